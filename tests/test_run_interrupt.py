"""Ctrl-C during `lab run` stops the scoring service and leaves the workspace consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.workspace import Workspace
from local_scoring.process import is_running, read_state

pytestmark = pytest.mark.e2e

WAIT_FOR_STEP_S = 240
INTERRUPT_EXIT_CODE = 130


def test_interrupt_during_benchmark_stops_service(sample_csv: Path, tmp_path: Path):
    workspace = tmp_path / "ws"
    command = [
        sys.executable, "-m", "lab", "--workspace", str(workspace), "run", "--path", str(sample_csv),
        "--timeout", "0.1", "--requests", "1000000", "--concurrency", "2",
        "--report-dir", str(tmp_path / "report"),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LAB_DATA_DIR", None)  # no test file: this test is about the interrupt, not the figures
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = []
    deadline = time.monotonic() + WAIT_FOR_STEP_S
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("== benchmark") or time.monotonic() > deadline:
                break
        assert any(line.startswith("== benchmark") for line in output), "".join(output)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        output.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
    text = "".join(output)

    assert process.returncode == INTERRUPT_EXIT_CODE, text
    assert "service bankmarketing-service stopped" in text
    state = read_state(workspace / "services" / "bankmarketing-service")
    assert not is_running(state)
    assert [asset.version for asset in Workspace(workspace).list("models")] == [1]
    staging = workspace / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert (tmp_path / "report" / "report.md").is_file()
