"""`lab pipeline` options and messages, without training.

The trigger tests send their requests to a loopback stand-in that records each request, so a
test can check that a bad option stops the command before anything is submitted. The endpoint
test starts the real `lab pipeline serve` in a subprocess, at the default verbosity.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from click.testing import CliRunner

from lab.cli import cli
from lab.pipelines import auth, definition, publish, runs
from lab.pipelines.api import PipelineApi, Request
from lab.pipelines.steps import all_child_runs
from lab.workspace import Workspace, atomic_write_json

SUBMIT_PATH = "/pipelines/v1.0/subscriptions/local/PipelineRuns/PipelineSubmit/6f1c0a52-0000-4000-8000-000000000001"
RUN_ID = "0c1d2e3f-0000-4000-8000-000000000002"
TOKEN = "stand-in-token"
SERVE_START_SECONDS = 60


class RecordingEndpoint(BaseHTTPRequestHandler):
    """Record each request; POST returns a run id, GET returns ``server.run_status``."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(("POST", self.path))
        self._reply({"Id": RUN_ID, "Status": "Queued"})

    def do_GET(self):
        self.server.requests.append(("GET", self.path))
        self._reply({"runId": RUN_ID, "status": self.server.run_status, "error": None})

    def _reply(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingEndpoint)
    server.requests = []
    server.run_status = "Completed"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    server.url = f"http://{host}:{port}{SUBMIT_PATH}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def workspace(tiny_workspace) -> Workspace:
    ws = tiny_workspace
    return ws


def invoke(workspace: Workspace, *args: str):
    return CliRunner().invoke(cli, ["--workspace", str(workspace.root), "pipeline", *args])


def trigger(workspace: Workspace, endpoint, *args: str):
    return invoke(workspace, "trigger", "--endpoint", endpoint.url, "--token", TOKEN, *args)


# -- trigger ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait", "--wait-timeout", "-1"], "Invalid value for '--wait-timeout': -1.0 is not in the range x>0"),
        (["--wait", "--wait-timeout", "0"], "Invalid value for '--wait-timeout': 0.0 is not in the range x>0"),
        (["--wait", "--timeout", "-1"], "Invalid value for '--timeout': -1.0 is not in the range x>0"),
        (["--wait-timeout", "5"], "--wait-timeout applies only with --wait"),
        (["--wait", "--wait-timeout", "5", "--timeout", "5"], "--timeout is the old name of --wait-timeout"),
    ],
)
def test_trigger_bad_wait_option_sends_nothing(workspace, endpoint, args, message):
    result = trigger(workspace, endpoint, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert endpoint.requests == []


def test_trigger_bad_experiment_sends_nothing(workspace, endpoint):
    result = trigger(workspace, endpoint, "--experiment", "bad name!")
    assert result.exit_code == 8
    assert "error: invalid experiment name 'bad name!'" in result.output
    assert endpoint.requests == []


def test_trigger_invalid_url_named(workspace):
    result = invoke(workspace, "trigger", "--endpoint", "not-a-url")
    assert result.exit_code == 8
    assert "error: invalid endpoint 'not-a-url'" in result.output
    assert "no token" not in result.output


def test_trigger_wait_timeout_says_run_goes_on(workspace, endpoint):
    endpoint.run_status = "Running"
    result = trigger(workspace, endpoint, "--wait", "--wait-timeout", "0.1")
    assert result.exit_code == 8
    assert result.output.splitlines()[0] == RUN_ID
    assert f"run {RUN_ID} is still running and goes on" in result.output
    assert f"`lab pipeline run-status {RUN_ID} --wait`" in result.output
    assert endpoint.requests[0][0] == "POST"


def test_trigger_old_timeout_name_still_works(workspace, endpoint):
    endpoint.run_status = "Running"
    result = trigger(workspace, endpoint, "--wait", "--timeout", "0.1")
    assert result.exit_code == 8
    assert "stopped waiting after 0.1 s" in result.output


def test_trigger_prints_status_as_runs_does(workspace, endpoint):
    result = trigger(workspace, endpoint, "--wait", "--wait-timeout", "30")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [RUN_ID, f"run {RUN_ID}: completed"]


def test_trigger_help_names_units(workspace):
    result = invoke(workspace, "trigger", "--help")
    assert "--wait-timeout SECONDS" in result.output
    assert "--timeout" not in result.output.replace("--wait-timeout", "")


# -- create -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1441"])
def test_create_bad_timeout_names_option(workspace, value):
    result = invoke(workspace, "create", "--timeout", value)
    assert result.exit_code == 8
    assert "error: invalid --timeout: parameter 'timeout_minutes'" in result.output
    assert result.output.rstrip().endswith("pass another --timeout")
    assert definition.list_pipelines(workspace) == []


def test_create_timeout_in_minutes(workspace):
    result = invoke(workspace, "create", "--timeout", "5")
    assert result.exit_code == 0, result.output
    assert "parameter   timeout_minutes (float, default 5.0)" in result.output
    help_text = invoke(workspace, "create", "--help").output
    assert "--timeout MINUTES" in help_text
    assert "at most 1440 (24 hours)" in help_text


def test_create_old_timeout_name_still_works(workspace):
    result = invoke(workspace, "create", "--timeout-minutes", "0.5")
    assert result.exit_code == 0, result.output
    assert definition.get_pipeline(workspace).parameters[0].default == 0.5


# -- run-status and cancel --------------------------------------------------------------------------


def queue_run(workspace: Workspace) -> runs.PipelineRun:
    created = definition.create_pipeline(workspace, "tiny", name="train")
    published = publish.publish_pipeline(workspace, created.ref, "Train")
    token = auth.get_or_create_token(workspace)
    request = Request("POST", published.submit_path, {"Authorization": f"Bearer {token}"},
                      json.dumps({"ExperimentName": "exp"}).encode())
    response = PipelineApi(workspace, dispatcher=None).handle(request)
    assert response.status == 200, response.body
    return runs.get_run(workspace, response.body["Id"])


def test_run_status_rejects_bad_wait_timeout(workspace):
    run = queue_run(workspace)
    result = invoke(workspace, "run-status", run.id, "--wait", "--wait-timeout", "-1")
    assert result.exit_code == 2
    assert "Invalid value for '--wait-timeout'" in result.output


def test_run_status_wait_timeout_says_run_goes_on(workspace):
    run = queue_run(workspace)
    result = invoke(workspace, "run-status", run.id, "--wait", "--wait-timeout", "0.2")
    assert result.exit_code == 8
    assert f"run {run.id} is still queued after 0.2 s and goes on" in result.output


def test_run_status_shows_running_step_time(workspace):
    run = queue_run(workspace)

    def start(data):
        data["status"] = runs.RUNNING
        data["steps"][0].update(status=runs.RUNNING, started_at="2026-01-01T00:00:00+00:00")

    runs.update_run(workspace, run.id, start)
    result = invoke(workspace, "run-status", run.id)
    assert result.exit_code == 0, result.output
    step_line = next(line for line in result.output.splitlines() if "step automl_module" in line)
    assert step_line.split()[2] == "running"
    assert step_line.endswith("s so far")


def test_download_canceled_run_says_trigger_again(workspace, tmp_path):
    run = queue_run(workspace)
    assert invoke(workspace, "cancel", run.id).exit_code == 0
    result = invoke(workspace, "download", run.id, "--output", "metrics_data", "--to", str(tmp_path))
    assert result.exit_code == 8
    assert "so this output will never be written; trigger the pipeline again" in result.output
    assert "--wait" not in result.output


# -- metrics.json -----------------------------------------------------------------------------------


def test_all_child_runs_keeps_cut_off_candidates(tmp_path):
    """A candidate cut off by the time budget counts in iterations_run, so it must be listed."""

    class Result:
        run_dir = tmp_path / "AutoML_1"

    completed = {"child_run_id": "AutoML_1_0", "iteration": 0, "algorithm": "LightGBM", "pipeline": "p0",
                 "status": "Completed", "error": None, "duration_seconds": 1.0, "metrics": {"accuracy": 0.9}}
    cut_off = {"child_run_id": "AutoML_1_1", "iteration": 1, "algorithm": "RandomForest", "pipeline": "p1",
               "status": "Canceled", "error": "stopped by the time budget before its last fold",
               "duration_seconds": 2.0, "metrics": {}}
    for child in (completed, cut_off):
        atomic_write_json(Result.run_dir / "children" / f"{child['child_run_id']}.json", child)

    listed = all_child_runs(Result(), [completed])

    assert [child["child_run_id"] for child in listed] == ["AutoML_1_0", "AutoML_1_1"]
    assert [child["status"] for child in listed] == ["Completed", "Canceled"]
    assert listed[1]["error"] == "stopped by the time budget before its last fold"
    assert "metrics" not in listed[0]


# -- the endpoint's request log ---------------------------------------------------------------------


def test_serve_logs_each_request_by_default(workspace, tmp_path):
    command = [sys.executable, "-m", "lab", "--workspace", str(workspace.root), "pipeline", "serve", "--port", "0"]
    stdout_path, stderr_path = tmp_path / "serve.out", tmp_path / "serve.err"
    submit_path = f"{publish.API_PREFIX}/PipelineRuns/PipelineSubmit/{RUN_ID}"
    # Without PYTHONUNBUFFERED, as a user runs `lab pipeline serve > file &`.
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    try:
        url = wait_for_server_url(workspace, process)
        assert f"pipeline endpoint on {url}" in stdout_path.read_text()
        assert requests.get(url + "/", timeout=10).status_code == 200
        assert requests.post(url + submit_path, json={}, timeout=10).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    log = stderr_path.read_text()
    assert " INFO lab.pipelines.server: GET / 200 " in log
    assert f" INFO lab.pipelines.server: POST {submit_path} 401 " in log
    assert auth.read_token(workspace) not in log


def wait_for_server_url(workspace: Workspace, process: subprocess.Popen) -> str:
    """Return the endpoint's URL from its server.json, once the process has written it."""
    from lab.pipelines.server import running_server_url

    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "lab pipeline serve exited early"
        url = running_server_url(workspace)
        if url:
            return url
        time.sleep(0.1)
    raise AssertionError(f"lab pipeline serve did not start within {SERVE_START_SECONDS} s")
