"""Contract of the local pipeline endpoint, called without a socket: routes, auth, body checks.

No run is started here (the API has no dispatcher), so these tests need no training.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat

import pytest

from lab.automl.settings import PRIMARY_METRICS as AUTOML_PRIMARY_METRICS
from lab.errors import WorkspaceError
from lab.pipelines import auth, definition, publish, runs
from lab.pipelines.api import PipelineApi, Request
from lab.pipelines.errors import PipelineError, RequestError
from lab.workspace import Workspace

TOKEN_HEADER = "Authorization"


@pytest.fixture()
def workspace(tiny_workspace) -> Workspace:
    """A workspace with a tiny dataset, one pipeline, one published pipeline and a token."""
    ws = tiny_workspace
    return ws


@pytest.fixture()
def published(workspace) -> publish.PublishedPipeline:
    created = definition.create_pipeline(workspace, "tiny", name="train", timeout_minutes=1.0)
    return publish.publish_pipeline(workspace, created.ref, "Bankmarketing Train", "1.0", "test pipeline")


@pytest.fixture()
def api(workspace) -> PipelineApi:
    return PipelineApi(workspace, dispatcher=None)


@pytest.fixture()
def token(workspace) -> str:
    return auth.get_or_create_token(workspace)


def submit_request(published, token: str | None, body, content_type: str = "application/json") -> Request:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers[TOKEN_HEADER] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", published.submit_path, headers, raw)


# -- definitions ----------------------------------------------------------------------------------


def test_create_pipeline_pins_dataset_version(workspace):
    created = definition.create_pipeline(workspace, "tiny", name="train")
    assert created.dataset == "tiny:1"
    assert created.version == 1
    assert [step.name for step in created.steps] == ["automl_module", "register_model"]
    assert created.outputs == ("metrics_data", "model_data")
    assert (created.path / definition.PIPELINE_FILE).is_file()


def test_create_pipeline_numbers_versions(workspace):
    definition.create_pipeline(workspace, "tiny", name="train")
    second = definition.create_pipeline(workspace, "tiny", name="train", timeout_minutes=2.5)
    assert second.version == 2
    assert definition.get_pipeline(workspace, "train").version == 2
    assert definition.get_pipeline(workspace, "train:1").parameter("timeout_minutes").default == 20.0
    assert definition.get_pipeline(workspace, "train:2").parameter("timeout_minutes").default == 2.5


def test_create_pipeline_unknown_dataset(workspace):
    with pytest.raises(WorkspaceError, match="no dataset named 'missing'"):
        definition.create_pipeline(workspace, "missing")


@pytest.mark.parametrize("timeout_minutes", [0, float("nan"), float("inf"), definition.MAX_TIMEOUT_MINUTES + 1])
def test_create_pipeline_rejects_bad_default(workspace, timeout_minutes):
    expected = r"^invalid --timeout: parameter 'timeout_minutes' .*; pass another --timeout$"
    with pytest.raises(PipelineError, match=expected):
        definition.create_pipeline(workspace, "tiny", timeout_minutes=timeout_minutes)


def test_timeout_parameter_declares_range(workspace):
    created = definition.create_pipeline(workspace, "tiny")
    declared = created.to_json()["parameters"][0]
    assert declared["name"] == "timeout_minutes"
    assert declared["minimum"] == 0.0
    assert declared["maximum"] == 24 * 60
    assert declared["unit"] == "minutes"


def stored_without_maximum(workspace, default) -> definition.PipelineDefinition:
    """Rewrite a stored definition as one written before timeout_minutes had an upper bound."""
    created = definition.create_pipeline(workspace, "tiny")
    path = created.path / definition.PIPELINE_FILE
    data = json.loads(path.read_text())
    for parameter in data["parameters"]:
        parameter.pop("maximum")
        parameter.pop("unit")
        if parameter["name"] == "timeout_minutes":
            parameter["default"] = default
    path.write_text(json.dumps(data))
    return definition.get_pipeline(workspace, created.ref)


def test_old_definition_gets_upper_bound(workspace):
    old = stored_without_maximum(workspace, 20.0)
    with pytest.raises(RequestError, match="at most 1440, got 1e\\+308") as caught:
        old.resolve_parameters({"timeout_minutes": 1e308})
    assert caught.value.status == 400


def test_old_definition_default_out_of_range(workspace):
    old = stored_without_maximum(workspace, 100000)
    with pytest.raises(RequestError, match="^the default of pipeline bankmarketing-train:1 is invalid: ") as caught:
        old.resolve_parameters({})
    assert caught.value.status == 400
    assert "assign timeout_minutes in ParameterAssignments" in str(caught.value)
    assert old.resolve_parameters({"timeout_minutes": 5}) == {"timeout_minutes": 5.0, "primary_metric": "AUC_weighted"}


def test_create_pipeline_rejects_bad_name(workspace):
    with pytest.raises(PipelineError, match="invalid pipeline name"):
        definition.create_pipeline(workspace, "tiny", name="../escape")


def test_primary_metrics_match_automl():
    assert definition.PRIMARY_METRICS == AUTOML_PRIMARY_METRICS


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("timeout_minutes", 5, 5.0),
        ("timeout_minutes", 0.25, 0.25),
        ("timeout_minutes", "20", 20.0),
        ("timeout_minutes", 1440, 1440.0),
        ("primary_metric", "accuracy", "accuracy"),
    ],
)
def test_parameter_coerce_accepts(workspace, name, value, expected):
    created = definition.create_pipeline(workspace, "tiny")
    assert created.resolve_parameters({name: value})[name] == expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("timeout_minutes", "twenty", "parameter 'timeout_minutes' expects a number, got 'twenty'"),
        ("timeout_minutes", True, "parameter 'timeout_minutes' expects a number, got True"),
        ("timeout_minutes", [1], "parameter 'timeout_minutes' expects a number, got [1]"),
        ("timeout_minutes", -1, "parameter 'timeout_minutes' must be greater than 0 and at most 1440 minutes, "
                                "got -1.0"),
        ("timeout_minutes", 1e308, "parameter 'timeout_minutes' must be greater than 0 and at most 1440 minutes, "
                                   "got 1e+308"),
        ("timeout_minutes", "1440.5", "parameter 'timeout_minutes' must be greater than 0 and at most 1440 minutes"),
        ("primary_metric", 3, "parameter 'primary_metric' expects a string, got 3"),
        ("primary_metric", "f1", "parameter 'primary_metric' must be one of"),
        ("max_depth", 3, "parameter 'max_depth' is not declared by pipeline bankmarketing-train:1"),
    ],
)
def test_parameter_coerce_rejects(workspace, name, value, message):
    created = definition.create_pipeline(workspace, "tiny")
    with pytest.raises(RequestError, match="^" + re.escape(message)) as caught:
        created.resolve_parameters({name: value})
    assert caught.value.status == 400


# -- token ----------------------------------------------------------------------------------------


def test_token_file_owner_only(workspace, token):
    path = auth.token_path(workspace)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert auth.read_token(workspace) == token


def test_token_stable_until_rotated(workspace, token):
    assert auth.get_or_create_token(workspace) == token
    rotated = auth.get_or_create_token(workspace, rotate=True)
    assert rotated != token
    assert auth.read_token(workspace) == rotated


def test_token_readable_by_others_rejected(workspace, token):
    os.chmod(auth.token_path(workspace), 0o644)
    with pytest.raises(PipelineError, match="readable by other users"):
        auth.read_token(workspace)


def test_token_folder_open_to_others_rejected(workspace, token):
    os.chmod(auth.token_path(workspace).parent, 0o755)
    with pytest.raises(PipelineError, match="has mode 0755 and is open to other users"):
        auth.read_token(workspace)


def test_rotate_restores_token_folder_mode(workspace, token):
    os.chmod(auth.token_path(workspace).parent, 0o755)
    rotated = auth.get_or_create_token(workspace, rotate=True)
    assert stat.S_IMODE(os.stat(auth.token_path(workspace).parent).st_mode) == 0o700
    assert auth.read_token(workspace) == rotated


def test_submit_with_open_token_folder_500(api, workspace, published, token):
    os.chmod(auth.token_path(workspace).parent, 0o755)
    response = api.handle(submit_request(published, token, {"ExperimentName": "exp"}))
    assert response.status == 500
    assert response.body["error"]["message"] == "the endpoint cannot check tokens; see the endpoint log"
    assert runs.list_runs(workspace) == []


def test_bearer_token_parsing():
    assert auth.bearer_token("Bearer abc") == "abc"
    assert auth.bearer_token("bearer  abc ") == "abc"
    assert auth.bearer_token("Basic abc") is None
    assert auth.bearer_token("Bearer") is None
    assert auth.bearer_token(None) is None


def test_mask_hides_token(token):
    assert token not in auth.mask(token)
    assert auth.mask(token).startswith(token[:4])


# -- routes ---------------------------------------------------------------------------------------


def test_submit_queues_run(api, workspace, published, token):
    response = api.handle(submit_request(published, token, {
        "ExperimentName": "pipeline-rest-endpoint",
        "ParameterAssignments": {"timeout_minutes": 0.5, "primary_metric": "accuracy"},
    }))
    assert response.status == 200
    assert response.body["Status"] == "Queued"
    assert response.body["PipelineId"] == published.id
    run = runs.get_run(workspace, response.body["Id"])
    assert run.status == runs.QUEUED
    assert run.data["parameters"] == {"timeout_minutes": 0.5, "primary_metric": "accuracy"}
    assert run.data["experiment_name"] == "pipeline-rest-endpoint"


def test_submit_defaults_parameters(api, workspace, published, token):
    response = api.handle(submit_request(published, token, {"ExperimentName": "exp"}))
    assert response.status == 200
    run = runs.get_run(workspace, response.body["Id"])
    assert run.data["parameters"] == {"timeout_minutes": 1.0, "primary_metric": "AUC_weighted"}


def test_submit_without_token_401(api, published, token):
    response = api.handle(submit_request(published, None, {"ExperimentName": "exp"}))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.body["error"]["code"] == "Unauthorized"
    assert response.body["error"]["message"].startswith("missing bearer token")


def test_submit_wrong_token_401(api, published, token):
    response = api.handle(submit_request(published, token + "x", {"ExperimentName": "exp"}))
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.body["error"]["message"].startswith("invalid bearer token")
    assert token not in json.dumps(response.body)


def test_submit_before_token_exists_401(api, published):
    response = api.handle(submit_request(published, "anything", {"ExperimentName": "exp"}))
    assert response.status == 401
    assert "lab auth token" in response.body["error"]["message"]


def test_submit_unknown_pipeline_404(api, published, token):
    path = published.submit_path.replace(published.id, "00000000-0000-0000-0000-000000000000")
    request = Request("POST", path, {TOKEN_HEADER: f"Bearer {token}"}, b'{"ExperimentName": "exp"}')
    response = api.handle(request)
    assert response.status == 404
    assert response.body["error"]["message"].startswith("no published pipeline with id 00000000-")


def test_submit_too_long_timeout_400(api, workspace, published, token):
    response = api.handle(submit_request(published, token, {
        "ExperimentName": "exp", "ParameterAssignments": {"timeout_minutes": 1e308},
    }))
    assert response.status == 400
    assert response.body == {"error": {"code": "UserError", "message":
                             "parameter 'timeout_minutes' must be greater than 0 and at most 1440 minutes, got 1e+308"}}
    assert runs.list_runs(workspace) == []


def test_404_messages_hide_workspace_path(api, workspace, published, token):
    headers = {TOKEN_HEADER: f"Bearer {token}"}
    unknown = "00000000-0000-0000-0000-000000000000"
    requests = [
        Request("POST", published.submit_path.replace(published.id, unknown), headers, b'{"ExperimentName": "e"}'),
        Request("GET", f"{publish.HISTORY_PREFIX}/runs/{unknown}", headers),
    ]
    for request in requests:
        response = api.handle(request)
        assert response.status == 404
        message = response.body["error"]["message"]
        assert str(workspace.root.resolve()) not in message
        assert str(workspace.root) not in message


def test_run_status_hides_workspace_path(api, workspace, published, token):
    run_id = api.handle(submit_request(published, token, {"ExperimentName": "exp"})).body["Id"]
    log = runs.run_dir(workspace, run_id).resolve() / "steps" / "automl_module" / "log.txt"

    def fail(data):
        data["steps"][0]["error"] = f"the step process was killed by SIGKILL; see {log}"
        runs.finish_run(data, runs.FAILED, f"step automl_module failed: see {log}")

    runs.update_run(workspace, run_id, fail)
    response = api.handle(Request("GET", f"{publish.HISTORY_PREFIX}/runs/{run_id}", {TOKEN_HEADER: f"Bearer {token}"}))
    relative = f"<workspace>/pipelines/runs/{run_id}/steps/automl_module/log.txt"
    assert response.body["error"] == f"step automl_module failed: see {relative}"
    assert response.body["steps"][0]["error"] == f"the step process was killed by SIGKILL; see {relative}"
    assert str(workspace.root.resolve()) not in json.dumps(response.body)


def test_submit_unknown_pipeline_needs_token(api, published, token):
    path = published.submit_path.replace(published.id, "00000000-0000-0000-0000-000000000000")
    response = api.handle(Request("POST", path, {}, b'{"ExperimentName": "exp"}'))
    assert response.status == 401


def test_submit_undeclared_parameter_400(api, workspace, published, token):
    response = api.handle(submit_request(published, token, {
        "ExperimentName": "exp", "ParameterAssignments": {"learning_rate": 0.1},
    }))
    assert response.status == 400
    assert response.body["error"]["message"].startswith("parameter 'learning_rate' is not declared")
    assert runs.list_runs(workspace) == []


def test_submit_wrong_type_400(api, published, token):
    response = api.handle(submit_request(published, token, {
        "ExperimentName": "exp", "ParameterAssignments": {"timeout_minutes": "twenty"},
    }))
    assert response.status == 400
    assert response.body == {"error": {
        "code": "UserError", "message": "parameter 'timeout_minutes' expects a number, got 'twenty'"}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'missing field "ExperimentName"'),
        ({"ExperimentName": "has space"}, 'invalid "ExperimentName" \'has space\''),
        ({"ExperimentName": 7}, 'invalid "ExperimentName"'),
        ({"ExperimentName": "exp", "ParameterAssignments": [1]}, '"ParameterAssignments" must be a JSON object'),
        ({"ExperimentName": "exp", "Extra": 1}, "unknown field 'Extra'"),
        ({"ExperimentName": "exp", "DataPathAssignments": {}}, "field 'DataPathAssignments' is not supported"),
        ([1, 2], "request body must be a JSON object, got a JSON list"),
        (b"{not json", "request body is not valid JSON"),
        (b"", "request body is empty"),
    ],
)
def test_submit_bad_body_400(api, published, token, body, message):
    response = api.handle(submit_request(published, token, body))
    assert response.status == 400
    assert response.body["error"]["message"].startswith(message)


def test_submit_wrong_content_type_415(api, published, token):
    response = api.handle(submit_request(published, token, {"ExperimentName": "exp"}, content_type="text/plain"))
    assert response.status == 415


def test_submit_get_405(api, published, token):
    response = api.handle(Request("GET", published.submit_path, {TOKEN_HEADER: f"Bearer {token}"}))
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


def test_unknown_route_404(api, token):
    response = api.handle(Request("GET", "/score", {TOKEN_HEADER: f"Bearer {token}"}))
    assert response.status == 404


def test_health_needs_no_token(api):
    response = api.handle(Request("GET", "/"))
    assert response.status == 200
    assert response.body == {"status": "Healthy"}


def test_run_status_route(api, published, token):
    submitted = api.handle(submit_request(published, token, {"ExperimentName": "exp"})).body
    path = f"{publish.HISTORY_PREFIX}/experiments/exp/runs/{submitted['Id']}"
    response = api.handle(Request("GET", path, {TOKEN_HEADER: f"Bearer {token}"}))
    assert response.status == 200
    assert response.body["runId"] == submitted["Id"]
    assert response.body["status"] == "Queued"
    assert [step["name"] for step in response.body["steps"]] == ["automl_module", "register_model"]


def test_run_status_wrong_experiment_404(api, published, token):
    submitted = api.handle(submit_request(published, token, {"ExperimentName": "exp"})).body
    path = f"{publish.HISTORY_PREFIX}/experiments/other/runs/{submitted['Id']}"
    response = api.handle(Request("GET", path, {TOKEN_HEADER: f"Bearer {token}"}))
    assert response.status == 404


def test_run_status_unknown_run_404(api, token):
    path = f"{publish.HISTORY_PREFIX}/runs/00000000-0000-0000-0000-000000000000"
    response = api.handle(Request("GET", path, {TOKEN_HEADER: f"Bearer {token}"}))
    assert response.status == 404


def test_run_status_needs_token(api, published, token):
    submitted = api.handle(submit_request(published, token, {"ExperimentName": "exp"})).body
    response = api.handle(Request("GET", f"{publish.HISTORY_PREFIX}/runs/{submitted['Id']}"))
    assert response.status == 401


def test_publish_assigns_new_id_each_time(workspace, published):
    again = publish.publish_pipeline(workspace, published.pipeline, published.name)
    assert again.id != published.id
    assert {p.id for p in publish.list_published(workspace)} == {published.id, again.id}


def test_published_endpoint_url_shape(published):
    url = published.endpoint("http://127.0.0.1:8790")
    assert url == (
        "http://127.0.0.1:8790/pipelines/v1.0/subscriptions/local/resourceGroups/local/providers/"
        f"Microsoft.MachineLearningServices/workspaces/local/PipelineRuns/PipelineSubmit/{published.id}"
    )


def test_submit_missing_definition_404(api, workspace, published, token):
    shutil.rmtree(definition.get_pipeline(workspace, published.pipeline).path)
    response = api.handle(submit_request(published, token, {"ExperimentName": "exp"}))
    assert response.status == 404
    assert "missing from the workspace" in response.body["error"]["message"]
