"""`lab train` through the CLI on a small synthetic dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lab import data as lab_data
from lab.cli import cli
from lab.workspace import Workspace

SEED = 0
ROWS = 300


@pytest.fixture()
def workspace(tmp_path) -> Workspace:
    rng = np.random.default_rng(SEED)
    positive = rng.random(ROWS) < 0.2
    frame = pd.DataFrame({
        "amount": rng.normal(size=ROWS) + positive,
        "channel": rng.choice(["web", "phone"], size=ROWS),
        "outcome": np.where(positive, "yes", "no"),
    })
    frame.to_csv(tmp_path / "small.csv", index=False)
    workspace = Workspace(tmp_path / "workspace")
    lab_data.register_dataset(workspace, tmp_path / "small.csv", name="small", label="outcome")
    return workspace


def invoke(workspace: Workspace, *args: str):
    return CliRunner().invoke(cli, ["--workspace", str(workspace.root), "train", *args], catch_exceptions=False)


def test_train_cli_registers_model(workspace):
    result = invoke(workspace, "--dataset", "small", "--iterations", "2", "--n-cross-validations", "3",
                    "--timeout", "1", "--model-name", "small-model", "--threshold-objective", "f1")
    assert result.exit_code == 0, result.output
    assert "registered model small-model:1" in result.output
    assert "guardrail class_balancing_detection" in result.output
    assert "search stopped (iterations) after 2 candidates" in result.output
    assert workspace.get("models", "small-model").manifest["threshold_objective"] == "f1"


def test_train_cli_unknown_drop_column_exit_code(workspace):
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "train", "--drop", "amout",
                                      "--iterations", "1"])
    assert result.exit_code == 4
    assert "cannot drop 'amout'" in result.output
    assert workspace.list("models") == []


def test_train_cli_rejects_zero_timeout(workspace):
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "train", "--timeout", "0"])
    assert result.exit_code == 4
    assert "invalid timeout 0.0 minutes" in result.output


def test_train_cli_unknown_dataset(workspace):
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "train", "--dataset", "nosuch"])
    assert result.exit_code == 3
    assert "no dataset named 'nosuch'" in result.output
