"""`lab train` through the CLI on a small synthetic dataset."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lab import data as lab_data
from lab.cli import cli
from lab.workspace import Workspace

SEED = 0
ROWS = 300
# How long to wait for the first child run to be written, and for the process to end after Ctrl-C.
CHILD_RUN_WAIT_S = 60


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
    manifest = workspace.get("models", "small-model").manifest
    assert manifest["threshold_objective"] == "f1"
    assert 0 < manifest["threshold_max_accuracy_loss"] < 0.05
    assert "among thresholds within" in result.output
    assert sum(manifest["iterations_by_status"].values()) == manifest["iterations"]


@pytest.mark.parametrize("value", ["half", "1.5", "-0.01"])
def test_train_cli_rejects_bad_accuracy_loss(workspace, value):
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "train",
                                      "--threshold-max-accuracy-loss", value])
    assert result.exit_code == 2
    assert f"{value!r} is not 'auto', 'none' or a fraction" in result.output
    assert workspace.list("models") == []


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


def test_train_cli_sigint_keeps_best_so_far(workspace):
    command = [sys.executable, "-c", "from lab.cli import main; main()", "--workspace", str(workspace.root),
               "train", "--dataset", "small", "--n-cross-validations", "3", "--timeout", "5", "--no-early-stopping",
               "--model-name", "small-model"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + CHILD_RUN_WAIT_S
        while not list(workspace.runs_dir.glob("*/children/*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=CHILD_RUN_WAIT_S)
    finally:
        if process.poll() is None:
            process.kill()
    manifest = workspace.get("models", "small-model").manifest
    assert process.returncode == 0, output
    assert manifest["stop_reason"] == "interrupted"
    assert "search stopped (interrupted)" in output
    assert not any((workspace.root / ".staging").glob("*"))
