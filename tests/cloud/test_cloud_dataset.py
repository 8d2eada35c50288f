"""The content hash that decides whether a registered dataset version is reused (cloud.dataset)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from cloud import dataset
from cloud_loopback import ScriptedServer
from cloud.settings import DatasetSettings
from lab import data as lab_data

CSV = b"age,job,y\n30,admin.,no\n41,technician,yes\n"


def test_official_url_uses_known_hash():
    assert dataset.content_sha256(lab_data.OFFICIAL_URL) == lab_data.OFFICIAL_SHA256


def test_other_url_is_downloaded_and_hashed():
    with ScriptedServer([(200, CSV)]) as server:
        digest = dataset.content_sha256(server.base_url + "/bankmarketing_train.csv")
    assert digest == hashlib.sha256(CSV).hexdigest()
    assert len(server.requests) == 1


def test_other_url_ignores_cached_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(lab_data.CACHE_DIR_ENV, str(tmp_path))
    (tmp_path / "bankmarketing_train.csv").write_bytes(b"stale,y\n1,no\n")
    with ScriptedServer([(200, CSV)]) as server:
        digest = dataset.content_sha256(server.base_url + "/bankmarketing_train.csv")
    assert digest == hashlib.sha256(CSV).hexdigest()


def test_plan_names_url_and_reuse_rule():
    change = dataset.plan_dataset(DatasetSettings(url="https://example.test/data.csv"))
    assert change.name == "bankmarketing"
    assert change.settings["url"] == "https://example.test/data.csv"
    assert "sha256" in change.settings["reuse"]


# NOTE: these tests replace Dataset.get_by_name with a table of versions. What Azure returns for a
# missing version, and the registration of a new version, are not covered.
class VersionTable:
    """Registered versions of one dataset, served the way Dataset.get_by_name returns them."""

    def __init__(self, digests: list[str]):
        self.versions = {number: SimpleNamespace(version=number, tags={dataset.SHA256_TAG: digest})
                         for number, digest in enumerate(digests, start=1)}
        self.calls: list[int | None] = []

    def get_by_name(self, workspace, name, version="latest"):
        self.calls.append(None if version == "latest" else version)
        number = max(self.versions, default=None) if version == "latest" else version
        if number not in self.versions:
            raise Exception(f"Cannot find dataset registered with name '{name}' (version: {version})")
        return self.versions[number]


@pytest.fixture
def versions(monkeypatch):
    from azureml.core import Dataset

    def install(digests: list[str]) -> VersionTable:
        table = VersionTable(digests)
        monkeypatch.setattr(Dataset, "get_by_name", staticmethod(table.get_by_name))
        return table

    return install


WORKSPACE = SimpleNamespace(name="ws")


def test_latest_version_with_same_content_reused(versions):
    table = versions(["a", "b", "c"])
    assert dataset.find_version_with_content(WORKSPACE, "bankmarketing", "c").version == 3
    assert table.calls == [None]


def test_older_version_with_same_content_reused(versions):
    table = versions(["a", "b", "c"])
    assert dataset.find_version_with_content(WORKSPACE, "bankmarketing", "a").version == 1
    assert table.calls == [None, 2, 1]


def test_unknown_content_finds_no_version(versions):
    versions(["a", "b"])
    assert dataset.find_version_with_content(WORKSPACE, "bankmarketing", "z") is None


def test_lookback_stops_after_limit(versions):
    table = versions(["a"] + ["x"] * (dataset.REUSE_LOOKBACK_VERSIONS + 5))
    assert dataset.find_version_with_content(WORKSPACE, "bankmarketing", "a") is None
    assert len(table.calls) == dataset.REUSE_LOOKBACK_VERSIONS


def test_missing_dataset_finds_no_version(versions):
    versions([])
    assert dataset.find_version_with_content(WORKSPACE, "bankmarketing", "a") is None
