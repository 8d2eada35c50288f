"""The pipeline trigger request (cloud.rest) against a scripted HTTP server on loopback."""

from __future__ import annotations

import json

import pytest

from cloud import rest
from cloud.errors import CloudError
from cloud_loopback import ScriptedServer

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-token-not-real"
PIPELINE_PATH = (
    "/pipelines/v1.0/subscriptions/sub/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
    "workspaces/ws/PipelineRuns/PipelineSubmit/0f1e2d3c"
)


def no_sleep(seconds: float) -> None:
    pass


def test_build_trigger_request_shape():
    request = rest.build_trigger_request(
        "https://westeurope.api.azureml.ms" + PIPELINE_PATH, {"Authorization": f"Bearer {TOKEN}"},
        parameter_assignments={"max_iterations": "3"},
    )
    assert request.url.endswith("/PipelineSubmit/0f1e2d3c")
    assert request.headers == {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert request.body == {"ExperimentName": "pipeline-rest-endpoint", "ParameterAssignments": {"max_iterations": "3"}}


def test_build_trigger_request_accepts_bare_token():
    request = rest.build_trigger_request("https://example.test/submit", TOKEN, "my-experiment")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.body == {"ExperimentName": "my-experiment", "ParameterAssignments": {}}


def test_describe_masks_token():
    request = rest.build_trigger_request("https://example.test/submit", TOKEN)
    assert TOKEN not in request.describe()
    assert TOKEN not in repr(request)
    assert TOKEN[:4] in request.describe()


@pytest.mark.parametrize(
    ("endpoint", "auth", "experiment", "match"),
    [
        ("ftp://example.test/submit", TOKEN, "e", "invalid pipeline endpoint"),
        ("not a url", TOKEN, "e", "invalid pipeline endpoint"),
        ("https://example.test/submit", {}, "e", "no bearer token"),
        ("https://example.test/submit", "Bearer ", "e", "no bearer token"),
        ("https://example.test/submit", TOKEN, " ", "invalid experiment name ' '"),
        ("https://example.test/submit", TOKEN, "", "invalid experiment name ''"),
        ("https://example.test/submit", TOKEN, "bad name!", "invalid experiment name 'bad name!'"),
        ("http://example.test/submit", TOKEN, "e", "refusing to send a bearer token over plain http to example.test"),
        ("http://10.0.0.1/submit", TOKEN, "e", "over plain http to 10.0.0.1"),
    ],
)
def test_build_trigger_request_rejects(endpoint, auth, experiment, match):
    with pytest.raises(CloudError, match=match):
        rest.build_trigger_request(endpoint, auth, experiment)


@pytest.mark.parametrize("host", ["127.0.0.1:8790", "localhost:8790", "[::1]:8790"])
def test_build_trigger_request_allows_http_to_loopback(host):
    request = rest.build_trigger_request(f"http://{host}/submit", TOKEN, "local-run")
    assert request.url == f"http://{host}/submit"


def test_describe_prints_body_as_json():
    request = rest.build_trigger_request("https://example.test/submit", TOKEN, "e", {"max_iterations": "3"})
    body = request.describe().split(" body ", 1)[1]
    assert json.loads(body) == {"ExperimentName": "e", "ParameterAssignments": {"max_iterations": "3"}}


def test_post_returns_run_id_from_answer():
    with ScriptedServer([(200, {"Id": "8a7b-run", "Status": "NotStarted"})]) as server:
        request = rest.build_trigger_request(server.base_url + PIPELINE_PATH, TOKEN, parameter_assignments={"a": 1})
        run_id = rest.post_trigger_request(request)
    assert run_id == "8a7b-run"
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent.method == "POST"
    assert sent.path == PIPELINE_PATH
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {"ExperimentName": "pipeline-rest-endpoint", "ParameterAssignments": {"a": 1}}


def test_post_retries_throttling_and_server_errors():
    answers = [(429, {"error": "slow down"}), (503, {"error": "busy"}), (200, {"Id": "run-3"})]
    with ScriptedServer(answers) as server:
        request = rest.build_trigger_request(server.base_url + PIPELINE_PATH, TOKEN)
        run_id = rest.post_trigger_request(request, sleep=no_sleep)
    assert run_id == "run-3"
    assert len(server.requests) == 3


def test_post_gives_up_after_attempts():
    with ScriptedServer([(500, {"error": {"code": "InternalError", "message": "boom"}})]) as server:
        request = rest.build_trigger_request(server.base_url + PIPELINE_PATH, TOKEN)
        with pytest.raises(CloudError, match="trigger of pipeline endpoint .* failed: HTTP 500"):
            rest.post_trigger_request(request, attempts=3, sleep=no_sleep)
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("status", "answer", "match"),
    [
        (401, {"error": "expired"}, "rejected the bearer token"),
        (403, {"error": "denied"}, "denied access"),
        (400, {"error": {"code": "BadArgument", "message": "unknown parameter 'x'"}}, "HTTP 400: BadArgument: unknown parameter 'x'"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, {"Status": "NotStarted"}, "returned no Id"),
    ],
)
def test_post_errors_name_endpoint_and_cause(status, answer, match):
    with ScriptedServer([(status, answer)]) as server:
        request = rest.build_trigger_request(server.base_url + PIPELINE_PATH, TOKEN)
        with pytest.raises(CloudError, match=match) as caught:
            rest.post_trigger_request(request, attempts=1)
    assert server.base_url in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_post_connection_refused_is_cloud_error(no_network):
    # The closed proxy port doubles as a loopback port with no listener.
    request = rest.build_trigger_request(no_network + PIPELINE_PATH, TOKEN)
    with pytest.raises(CloudError, match="failed: .*retry later"):
        rest.post_trigger_request(request, attempts=2, sleep=no_sleep)
