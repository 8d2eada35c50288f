"""The content hash that decides whether a registered dataset version is reused (cloud.dataset)."""

from __future__ import annotations

import hashlib

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
