"""Workspace registration: version numbering, atomicity and lookups."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lab.errors import WorkspaceError
from lab.workspace import Workspace, atomic_write_json, read_json


def write_file(content: str):
    def build(folder: Path) -> dict:
        (folder / "payload.txt").write_text(content)
        return {"content": content}

    return build


def test_register_assigns_increasing_versions(tmp_path):
    workspace = Workspace(tmp_path)
    first = workspace.register("models", "m", write_file("a"))
    second = workspace.register("models", "m", write_file("b"))
    assert (first.version, second.version) == (1, 2)
    assert (second.path / "payload.txt").read_text() == "b"
    assert second.manifest["content"] == "b"


def test_register_failure_leaves_no_version(tmp_path):
    workspace = Workspace(tmp_path)

    def build(folder: Path) -> dict:
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        workspace.register("models", "m", build)
    assert workspace.list("models") == []
    assert list((tmp_path / ".staging").iterdir()) == []


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    workspace = Workspace(tmp_path)
    versions: list[int] = []
    lock = threading.Lock()

    def register(index: int) -> None:
        asset = workspace.register("datasets", "d", write_file(str(index)))
        with lock:
            versions.append(asset.version)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))


def test_get_latest_and_explicit_version(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.register("models", "m", write_file("a"))
    workspace.register("models", "m", write_file("b"))
    assert workspace.get("models", "m").version == 2
    assert workspace.get("models", "m:1").manifest["content"] == "a"
    assert workspace.get("models", "m:latest").version == 2


def test_get_unknown_version_lists_known(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.register("models", "m", write_file("a"))
    with pytest.raises(WorkspaceError, match=r"has no version 7 \(registered: 1\)"):
        workspace.get("models", "m:7")


def test_get_on_empty_workspace_names_the_command(tmp_path):
    with pytest.raises(WorkspaceError, match="run `lab train` first"):
        Workspace(tmp_path).get("models")


def test_version_folder_without_manifest_is_ignored(tmp_path):
    workspace = Workspace(tmp_path)
    (tmp_path / "models" / "m" / "1").mkdir(parents=True)
    assert workspace.list("models") == []


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a b"])
def test_invalid_names_are_rejected(tmp_path, name):
    with pytest.raises(WorkspaceError, match="invalid asset name"):
        Workspace(tmp_path).register("models", name, write_file("a"))


def test_atomic_write_json_sets_mode(tmp_path):
    path = tmp_path / "secret.json"
    atomic_write_json(path, {"k": 1}, mode=0o600)
    assert read_json(path) == {"k": 1}
    assert path.stat().st_mode & 0o777 == 0o600
