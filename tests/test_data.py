"""Data loading, schema inference and dataset registration, including every rejected input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lab import data as lab_data
from lab.errors import DataError
from lab.workspace import Workspace


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        lab_data.read_csv(tmp_path / "nope.csv")


def test_read_csv_empty_file(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        lab_data.read_csv(write(tmp_path / "empty.csv", ""))


def test_read_csv_binary_file(tmp_path):
    path = tmp_path / "model.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(DataError, match="not a CSV file"):
        lab_data.read_csv(path)


def test_read_csv_plain_text_is_not_csv(tmp_path):
    with pytest.raises(DataError, match="at least two columns"):
        lab_data.read_csv(write(tmp_path / "notes.csv", "hello world\nsecond line\n"))


def test_read_csv_missing_label(tmp_path):
    with pytest.raises(DataError, match="label column 'y' not found \\(columns: a, b\\)"):
        lab_data.read_csv(write(tmp_path / "x.csv", "a,b\n1,2\n"))


def test_read_csv_header_only(tmp_path):
    with pytest.raises(DataError, match="no data rows"):
        lab_data.read_csv(write(tmp_path / "x.csv", "a,y\n"))


def test_read_csv_single_class(tmp_path):
    with pytest.raises(DataError, match="fewer than two classes"):
        lab_data.read_csv(write(tmp_path / "x.csv", "a,y\n1,no\n2,no\n"))


def test_read_csv_semicolon_delimiter(tmp_path):
    frame = lab_data.read_csv(write(tmp_path / "x.csv", "a;b;y\n1;u;no\n2;v;yes\n"))
    assert list(frame.columns) == ["a", "b", "y"]


def test_infer_schema_types_and_categories():
    frame = pd.DataFrame({
        "age": [30, 40, 50], "rate": [1.5, 2.0, None], "job": ["a", "b", "a"], "y": ["no", "yes", "no"],
    })
    schema = {column.name: column for column in lab_data.infer_schema(frame, "y")}
    assert list(schema) == ["age", "rate", "job"]
    assert schema["age"].type == "integer"
    assert schema["rate"].type == "float"
    assert schema["rate"].missing == 1
    assert schema["job"].categories == ("a", "b")


def test_check_hash_rejects_modified_official_file(tmp_path, data_dir):
    copy = tmp_path / lab_data.OFFICIAL_FILENAME
    shutil.copyfile(data_dir / lab_data.OFFICIAL_FILENAME, copy)
    with open(copy, "a", encoding="utf-8") as handle:
        handle.write("\n")
    with pytest.raises(DataError, match="sha256 is .* expected 4c16872d"):
        lab_data.check_hash(copy, None)


def test_check_hash_explicit_expectation(tmp_path):
    path = write(tmp_path / "x.csv", "a,y\n1,no\n2,yes\n")
    with pytest.raises(DataError, match="expected 00"):
        lab_data.check_hash(path, "00" * 32)


def test_register_dataset_official_file(workspace, data_dir):
    asset = lab_data.register_dataset(workspace, data_dir / lab_data.OFFICIAL_FILENAME)
    assert asset.ref == "bankmarketing:1"
    assert asset.manifest["sha256"] == lab_data.OFFICIAL_SHA256
    assert asset.manifest["rows"] == 32_950
    assert asset.manifest["class_balance"] == {"no": 29_258, "yes": 3_692}
    assert asset.manifest["columns"] == 20


def test_register_dataset_versions_increase(workspace, tmp_path):
    path = write(tmp_path / "x.csv", "a,y\n1,no\n2,yes\n")
    first = lab_data.register_dataset(workspace, path, name="small")
    second = lab_data.register_dataset(workspace, path, name="small")
    assert (first.version, second.version) == (1, 2)
    assert workspace.get("datasets", "small").version == 2


@pytest.mark.parametrize("content", ["", "a,b\n1,2\n", "just text\n"])
def test_register_dataset_failure_registers_nothing(workspace, tmp_path, content):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError):
        lab_data.register_dataset(workspace, path)
    assert workspace.list("datasets") == []
    staging = workspace.root / ".staging"
    assert not staging.exists() or os.listdir(staging) == []


def test_resolve_source_uses_data_dir(monkeypatch, data_dir):
    monkeypatch.setenv(lab_data.DATA_DIR_ENV, str(data_dir))
    assert lab_data.resolve_source() == data_dir / lab_data.OFFICIAL_FILENAME


def test_resolve_source_data_dir_without_file(monkeypatch, tmp_path):
    monkeypatch.setenv(lab_data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DataError, match="must contain bankmarketing_train.csv"):
        lab_data.resolve_source()


def test_check_hash_own_file_with_official_name_suggests_sha256(tmp_path):
    path = write(tmp_path / lab_data.OFFICIAL_FILENAME, "a,y\n1,no\n2,yes\n")
    actual = lab_data.sha256_of(path)
    with pytest.raises(DataError, match=f"rename it or pass --sha256 {actual}"):
        lab_data.check_hash(path, None)
    assert lab_data.check_hash(path, actual) == actual
