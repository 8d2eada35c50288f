"""Following an AutoML run, failed runs and deployments, and the swagger download.

``ScriptedRun`` replaces ``AutoMLRun``: it plays back snapshots of the child runs with the
attributes the SDK's ``Run`` has (``id``, ``status``, ``properties``, ``get_metrics``,
``get_details``). What this does not cover: the SDK's own polling and run-history calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from cloud import automl, deploy
from cloud.errors import CloudError
from cloud.settings import DeploySettings
from cloud_loopback import ScriptedServer


@dataclass
class ScriptedChild:
    id: str
    status: str
    properties: dict
    score: float | None = None
    error: dict | None = None

    def get_status(self):
        return self.status

    def get_metrics(self, name=None):
        return {} if self.score is None else {name: self.score}

    def get_details(self):
        return {"error": self.error} if self.error else {}


@dataclass
class ScriptedRun:
    """Returns the next snapshot of (status, children) on each get_status call."""

    snapshots: list
    error: dict | None = None
    id: str = "AutoML_1"
    calls: int = 0
    metric_reads: list = field(default_factory=list)

    def get_status(self):
        self.calls = min(self.calls + 1, len(self.snapshots))
        return self.snapshots[self.calls - 1][0]

    def get_children(self):
        return self.snapshots[self.calls - 1][1]

    def get_details(self):
        return {"error": self.error} if self.error else {}


def child(iteration, status, score=None, algorithm="LightGBM", error=None):
    properties = {"iteration": str(iteration), "run_preprocessor": "MaxAbsScaler", "run_algorithm": algorithm}
    return ScriptedChild(f"AutoML_1_{iteration}", status, properties, score, error)


SETUP_CHILD = ScriptedChild("AutoML_1_setup", "Completed", {})


def test_follow_run_prints_each_finished_child_and_best():
    run = ScriptedRun([
        ("Running", [SETUP_CHILD, child(0, "Running")]),
        ("Running", [SETUP_CHILD, child(0, "Completed", 0.91), child(1, "Running", algorithm="XGBoost")]),
        ("Completed", [SETUP_CHILD, child(0, "Completed", 0.91), child(1, "Completed", 0.94, "XGBoost"),
                       child(2, "Completed", 0.95, "VotingEnsemble")]),
    ])
    lines = []
    records = automl.follow_run(run, "AUC_weighted", lines.append, poll_interval_s=0, sleep=lambda s: None)
    assert lines[0].split() == ["iter", "pipeline", "status", "score", "best", "so", "far"]
    assert len(lines) == 4
    assert lines[1].split()[:5] == ["0", "MaxAbsScaler", "LightGBM", "Completed", "0.9100"]
    assert lines[2].split()[-2:] == ["best", "0.9400"]
    assert lines[3].split()[2] == "VotingEnsemble"
    assert lines[3].split()[-1] == "0.9500"
    assert [record.iteration for record in records] == [0, 1, 2]


def test_follow_run_shows_failed_child_cause():
    error = {"code": "UserError", "message": "Input data has a column of all NaN values"}
    run = ScriptedRun([("Completed", [child(0, "Failed", error=error), child(1, "Completed", 0.9)])])
    lines = []
    automl.follow_run(run, "AUC_weighted", lines.append, sleep=lambda s: None)
    assert "Failed" in lines[1]
    assert "UserError: Input data has a column of all NaN values" in lines[1]
    assert lines[2].split()[-1] == "0.9000"


def test_follow_run_failed_parent_raises_one_line():
    error = {"code": "UserError", "message": "Label column y not found in training data"}
    run = ScriptedRun([("Failed", [])], error=error)
    with pytest.raises(CloudError) as caught:
        automl.follow_run(run, "AUC_weighted", lambda line: None, sleep=lambda s: None)
    message = str(caught.value)
    assert message.startswith("AutoML run AutoML_1 failed: UserError: Label column y not found in training data;")
    assert "lab cloud automl" in message
    assert "\n" not in message


@dataclass
class FailedService:
    name: str = "bankmarketing-service"
    state: str = "Unhealthy"
    error: dict = field(default_factory=lambda: {
        "code": "AciDeploymentFailed",
        "message": "Your container application crashed: ModuleNotFoundError: No module named 'azureml.automl.runtime'",
    })


def test_deployment_failure_names_service_cause_and_leftover():
    message = str(deploy.deployment_failed(FailedService()))
    assert message.startswith("deployment of service bankmarketing-service failed (state Unhealthy): "
                              "AciDeploymentFailed: Your container application crashed")
    assert "the failed service is left in the workspace" in message
    assert "lab cloud logs --service bankmarketing-service" in message
    assert "lab cloud cleanup --service bankmarketing-service" in message


@dataclass
class ServiceWithKeys:
    name: str = "svc"
    state: str = "Healthy"
    scoring_uri: str = "http://svc.westeurope.azurecontainer.io/score"
    swagger_uri: str = "http://svc.westeurope.azurecontainer.io/swagger.json"
    auth_enabled: bool = True
    enable_app_insights: bool = True

    def get_keys(self):
        return "PrimaryKeyValue0123456789abcdefXYZ", "SecondaryKeyValue0123456789abcdef"


def test_service_lines_never_show_full_keys():
    text = "\n".join(deploy.service_lines(deploy.describe_service(ServiceWithKeys())))
    assert "PrimaryKeyValue0123456789abcdefXYZ" not in text
    assert "SecondaryKeyValue0123456789abcdef" not in text
    assert "Prim... (34 chars)" in text
    assert "scoring URI  http://svc.westeurope.azurecontainer.io/score" in text
    assert "get_keys()" in text


SWAGGER = {"swagger": "2.0", "info": {"title": "ML service"}, "paths": {"/score": {}}}


def test_download_swagger_without_key(tmp_path):
    with ScriptedServer([(200, SWAGGER)]) as server:
        path = deploy.download_swagger(server.base_url + "/swagger.json", tmp_path / "swagger.json", key="k-123")
    assert json.loads(path.read_text(encoding="utf-8")) == SWAGGER
    assert "Authorization" not in server.requests[0].headers


def test_download_swagger_sends_key_after_401(tmp_path):
    with ScriptedServer([(401, {"message": "key required"}), (200, SWAGGER)]) as server:
        deploy.download_swagger(server.base_url + "/swagger.json", tmp_path / "swagger.json", key="k-123")
    assert server.requests[1].headers["Authorization"] == "Bearer k-123"


def test_download_swagger_not_json(tmp_path):
    with ScriptedServer([(200, b"<html></html>")]) as server:
        with pytest.raises(CloudError, match="did not return JSON"):
            deploy.download_swagger(server.base_url + "/swagger.json", tmp_path / "swagger.json")
    assert not (tmp_path / "swagger.json").exists()


@dataclass
class RegisteredModel:
    name: str = "bankmarketing-automl"
    version: int = 2


@dataclass
class ExistingService:
    models: list
    state: str = "Healthy"
    name: str = "bankmarketing-service"


def test_deploy_reuses_healthy_service_with_same_model(sdk, monkeypatch):
    existing = ExistingService([RegisteredModel()])
    monkeypatch.setattr(deploy, "get_service", lambda workspace, name: existing)
    service, reused = deploy.deploy_model(object(), RegisteredModel(), DeploySettings())
    assert service is existing
    assert reused is True


@pytest.mark.parametrize(
    ("existing", "match"),
    [
        (ExistingService([RegisteredModel(version=1)]), r"does not serve bankmarketing-automl:2; pass --replace"),
        (ExistingService([RegisteredModel()], state="Unhealthy"), r"state Unhealthy.*pass --replace"),
    ],
)
def test_deploy_needs_replace_for_other_service(sdk, monkeypatch, existing, match):
    monkeypatch.setattr(deploy, "get_service", lambda workspace, name: existing)
    with pytest.raises(CloudError, match=match):
        deploy.deploy_model(object(), RegisteredModel(), DeploySettings())
