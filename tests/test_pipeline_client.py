"""The trigger client: the request it sends for Azure, checked on a loopback HTTP server.

The server below stands in for Azure's pipelines host on 127.0.0.1. It records each request
and responds as Azure does: 200 with the run id in ``Id``, or an ``{"error": {...}}`` body.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.pipelines import client
from lab.pipelines.errors import TriggerError

AZURE_PATH = (
    "/pipelines/v1.0/subscriptions/0000-sub/resourceGroups/rg-lab/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws-lab/PipelineRuns/PipelineSubmit/5a7e1c2d-pipeline"
)
AAD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-token"
RUN_ID = "f3b1a7c2-0d7e-4a43-9c1e-7f5e1a2b3c4d"


class RecordingAzure(BaseHTTPRequestHandler):
    """Record each request; respond to POST with a run id, or with the status in ``reply_status``."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        status = self.server.reply_status
        payload = {"Id": RUN_ID, "Status": "NotStarted"} if status == 200 else {
            "error": {"code": "UserError", "message": "Parameter 'nope' is not defined"}}
        self._reply(status, payload)

    def do_GET(self):
        self.server.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": b""})
        self._reply(200, {"runId": RUN_ID, "status": self.server.run_status})

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def azure():
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingAzure)
    server.requests = []
    server.reply_status = 200
    server.run_status = "Completed"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def endpoint_of(server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{AZURE_PATH}"


def test_submit_sends_azure_request(azure):
    answer = client.submit(endpoint_of(azure), AAD_TOKEN, "pipeline-rest-endpoint", {"timeout_minutes": 20})
    assert answer["Id"] == RUN_ID
    assert len(azure.requests) == 1
    request = azure.requests[0]
    assert request["method"] == "POST"
    assert request["path"] == AZURE_PATH
    assert request["headers"]["Authorization"] == f"Bearer {AAD_TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "ExperimentName": "pipeline-rest-endpoint",
        "ParameterAssignments": {"timeout_minutes": 20},
    }


def test_submit_error_body_message(azure):
    azure.reply_status = 400
    with pytest.raises(TriggerError, match="responded 400: Parameter 'nope' is not defined") as caught:
        client.submit(endpoint_of(azure), AAD_TOKEN, "exp", {"nope": 1})
    assert caught.value.status == 400


def test_submit_unreachable_endpoint():
    # Port 9 (discard) on loopback is closed on test machines; the client must say so, not hang.
    endpoint = f"http://127.0.0.1:9{AZURE_PATH}"
    with pytest.raises(TriggerError, match="cannot reach http://127.0.0.1:9"):
        client.submit(endpoint, AAD_TOKEN, "exp", timeout_seconds=5)


def test_get_run_status_uses_history_route(azure):
    status = client.get_run_status(endpoint_of(azure), AAD_TOKEN, "exp", RUN_ID)
    assert status["status"] == "Completed"
    request = azure.requests[0]
    assert request["path"] == (
        "/history/v1.0/subscriptions/0000-sub/resourceGroups/rg-lab/providers/"
        f"Microsoft.MachineLearningServices/workspaces/ws-lab/experiments/exp/runs/{RUN_ID}"
    )
    assert request["headers"]["Authorization"] == f"Bearer {AAD_TOKEN}"


def test_build_request_for_azure_host():
    endpoint = "https://westeurope.api.azureml.ms" + AZURE_PATH
    prepared = client.build_submit_request(endpoint, AAD_TOKEN, "exp", {"primary_metric": "accuracy"})
    assert prepared.method == "POST"
    assert prepared.url == endpoint
    assert prepared.headers["Authorization"] == f"Bearer {AAD_TOKEN}"
    assert json.loads(prepared.body) == {"ExperimentName": "exp", "ParameterAssignments": {"primary_metric": "accuracy"}}


def test_plain_http_to_remote_host_rejected():
    with pytest.raises(TriggerError, match="refusing to send a bearer token over plain http"):
        client.build_submit_request("http://example.org" + AZURE_PATH, AAD_TOKEN, "exp")


def test_endpoint_without_submit_route_rejected():
    with pytest.raises(TriggerError, match="is not a pipeline submit URL"):
        client.build_submit_request("https://westeurope.api.azureml.ms/score", AAD_TOKEN, "exp")


def test_missing_token_rejected():
    with pytest.raises(TriggerError, match="no token"):
        client.build_submit_request("https://westeurope.api.azureml.ms" + AZURE_PATH, "", "exp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timeout_minutes=20", ("timeout_minutes", 20)),
        ("timeout_minutes=0.5", ("timeout_minutes", 0.5)),
        ("primary_metric=AUC_weighted", ("primary_metric", "AUC_weighted")),
        ("flag=true", ("flag", True)),
        ("note=a=b", ("note", "a=b")),
        ("empty=", ("empty", "")),
    ],
)
def test_parse_assignment(text, expected):
    assert client.parse_assignment(text) == expected


def test_parse_assignment_without_equals():
    with pytest.raises(TriggerError, match="use NAME=VALUE"):
        client.parse_assignment("timeout_minutes")


def test_resolve_token_prefers_option(monkeypatch):
    monkeypatch.setenv("LAB_PIPELINE_TOKEN", "from-env")
    assert client.resolve_token("from-option", "https://h" + AZURE_PATH) == "from-option"
    assert client.resolve_token(None, "https://h" + AZURE_PATH) == "from-env"


def test_resolve_token_missing(monkeypatch):
    monkeypatch.delenv("LAB_PIPELINE_TOKEN", raising=False)
    with pytest.raises(TriggerError, match="no token for h"):
        client.resolve_token(None, "https://h" + AZURE_PATH)


def test_client_imports_no_azure_sdk():
    code = "import sys, lab.pipelines.client; print(sorted(m for m in sys.modules if m.startswith('azureml')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_wait_timeout_says_run_goes_on(azure):
    azure.run_status = "Running"
    with pytest.raises(client.WaitTimeout) as caught:
        client.wait_for_run(endpoint_of(azure), AAD_TOKEN, "exp", RUN_ID, timeout_seconds=0.2, poll_seconds=0.05)
    message = str(caught.value)
    assert message.startswith(f"stopped waiting after 0.2 s: run {RUN_ID} is still running and goes on")
    # The stand-in is on loopback, so the message points at the local command.
    assert f"`lab pipeline run-status {RUN_ID} --wait`" in message
    assert caught.value.last_status == "Running"


def test_wait_timeout_for_azure_names_cloud_command():
    error = client.WaitTimeout(RUN_ID, "NotStarted", 30, "https://westeurope.api.azureml.ms" + AZURE_PATH, "exp")
    assert "is still NotStarted and goes on" in str(error)
    assert f"`lab cloud pipeline status --run-id {RUN_ID} --experiment exp --follow`" in str(error)


@pytest.mark.parametrize("timeout_seconds", [0, -1, float("nan")])
def test_wait_rejects_bad_timeout_before_polling(azure, timeout_seconds):
    with pytest.raises(ValueError, match="timeout_seconds must be a positive number"):
        client.wait_for_run(endpoint_of(azure), AAD_TOKEN, "exp", RUN_ID, timeout_seconds=timeout_seconds)
    assert azure.requests == []


@pytest.mark.parametrize("name", ["bad name!", "", "-leading-dash", "x" * 256, "../../etc"])
def test_invalid_experiment_name_rejected(name):
    with pytest.raises(TriggerError, match="invalid experiment name"):
        client.build_submit_request("https://westeurope.api.azureml.ms" + AZURE_PATH, AAD_TOKEN, name)


def test_display_status_lowercases_azure_names():
    assert client.display_status("Completed") == "completed"
    assert client.display_status("Queued") == "queued"
    assert client.display_status("NotStarted") == "NotStarted"
