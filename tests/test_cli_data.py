"""`lab data` as a user runs it: exit codes, one-line errors, nothing registered on failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import cli
from lab.errors import DataError
from lab.workspace import Workspace


def run_lab(workspace: Path, *args: str):
    return CliRunner().invoke(cli, ["--workspace", str(workspace), *args])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("a,b\n1,2\n", "label column 'y' not found"),
        ("plain text\n", "not a CSV file with a header row"),
    ],
)
def test_data_command_rejects_bad_file(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run_lab(tmp_path / "ws", "data", "--path", str(path))
    assert result.exit_code == DataError.exit_code
    assert message in result.output
    assert str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert Workspace(tmp_path / "ws").list("datasets") == []


def test_data_command_missing_file(tmp_path):
    result = run_lab(tmp_path / "ws", "data", "--path", str(tmp_path / "missing.csv"))
    assert result.exit_code == DataError.exit_code
    assert "missing.csv: file not found" in result.output


def test_data_command_registers_from_data_dir(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
    result = run_lab(tmp_path / "ws", "data")
    assert result.exit_code == 0, result.output
    assert "registered dataset bankmarketing:1" in result.output
    assert "no=29258, yes=3692" in result.output
