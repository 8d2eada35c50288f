"""End to end: `lab run` on a small stratified sample, then the kept service over loopback HTTP.

Trains with the real local AutoML on 2,000 rows for a few seconds, deploys the registered model
behind the key-checking front, scores the exercise's records and load-tests the endpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from lab.cli import cli
from lab.client import EXERCISE_RECORDS
from lab.service import get_service
from lab.workspace import Workspace

pytestmark = pytest.mark.e2e

TRAIN_MINUTES = "0.25"
TIMEOUT_S = 30
TRAINING_COLUMNS = [
    "age", "job", "marital", "education", "default", "housing", "loan", "contact", "month", "day_of_week",
    "duration", "campaign", "pdays", "previous", "poutcome", "emp.var.rate", "cons.price.idx",
    "cons.conf.idx", "euribor3m", "nr.employed",
]


@pytest.fixture(scope="module")
def lab_run(sample_csv: Path, data_dir: Path, tmp_path_factory):
    """Run `lab run --keep-service` once; yield the workspace, report folder and CLI output."""
    root = tmp_path_factory.mktemp("e2e")
    workspace = root / "ws"
    report = root / "report"
    test_file = data_dir / "bankmarketing_test.csv"
    args = [
        "--workspace", str(workspace), "run", "--path", str(sample_csv), "--timeout", TRAIN_MINUTES,
        "--requests", "20", "--concurrency", "2", "--report-dir", str(report), "--keep-service",
    ]
    if test_file.is_file():
        args += ["--test-file", str(test_file)]
    result = CliRunner().invoke(cli, args)
    yield {"workspace": Workspace(workspace), "report": report, "result": result, "has_test": test_file.is_file()}
    CliRunner().invoke(cli, ["--workspace", str(workspace), "deploy", "--stop"])


@pytest.fixture(scope="module")
def service(lab_run):
    assert lab_run["result"].exit_code == 0, lab_run["result"].output
    return get_service(lab_run["workspace"])


def test_run_registers_dataset_and_model(lab_run):
    assert lab_run["result"].exit_code == 0, lab_run["result"].output
    workspace = lab_run["workspace"]
    assert workspace.get("datasets").manifest["rows"] == 2_000
    model = workspace.get("models")
    assert (model.path / "model.pkl").is_file()
    assert model.manifest["primary_metric"] == "AUC_weighted"
    assert 0.5 < model.manifest["metrics"]["AUC_weighted"] <= 1.0


def test_run_writes_report(lab_run):
    text = (lab_run["report"] / "report.md").read_text()
    assert "## Dataset" in text
    assert "### Leaderboard (cross-validation)" in text
    assert "## Endpoint" in text
    assert "## Load test" in text
    assert "20 requests at concurrency 2" in text
    if lab_run["has_test"]:
        assert "test file (8238 rows)" in text


def test_run_writes_request_body(lab_run):
    body = json.loads((lab_run["report"] / "data.json").read_text())
    assert body == {"data": EXERCISE_RECORDS}


def test_score_without_key_is_401(service):
    response = requests.post(service.scoring_uri, json={"data": EXERCISE_RECORDS}, timeout=TIMEOUT_S)
    assert response.status_code == 401
    assert "message" in response.json()


@pytest.mark.parametrize("key_index", [0, 1], ids=["primary", "secondary"])
def test_score_with_key_is_200(service, key_index):
    key = service.get_keys()[key_index]
    response = requests.post(service.scoring_uri, json={"data": EXERCISE_RECORDS},
                             headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_S)
    assert response.status_code == 200
    predictions = response.json()["result"]
    assert len(predictions) == 2
    assert set(predictions) <= {"yes", "no"}


def test_exercise_records_scored_by_name(service, lab_run):
    """Keys arrive alphabetically; the answer must equal scoring the records in training order."""
    import pandas as pd

    from lab.models import load_model

    model = load_model(lab_run["workspace"].get("models"))
    expected = [str(label) for label in model.predict(pd.DataFrame(EXERCISE_RECORDS)[TRAINING_COLUMNS])]
    key = service.get_keys()[0]
    response = requests.post(service.scoring_uri, json={"data": EXERCISE_RECORDS},
                             headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_S)
    assert response.json()["result"] == expected


def test_swagger_lists_columns_in_training_order(service):
    swagger = requests.get(service.swagger_uri, timeout=TIMEOUT_S).json()
    items = swagger["definitions"]["ServiceInput"]["properties"]["data"]["items"]
    assert list(items["properties"]) == TRAINING_COLUMNS


def test_endpoint_command_prints_predictions(service, lab_run, tmp_path):
    body_file = tmp_path / "data.json"
    result = CliRunner().invoke(cli, ["--workspace", str(lab_run["workspace"].root), "endpoint",
                                      "--body-file", str(body_file)])
    assert result.exit_code == 0, result.output
    assert "predictions: [" in result.output
    assert json.loads(body_file.read_text()) == {"data": EXERCISE_RECORDS}


def test_benchmark_command_reports_figures(service, lab_run, tmp_path):
    body_file = tmp_path / "data.json"
    body_file.write_text(json.dumps({"data": EXERCISE_RECORDS}))
    result = CliRunner().invoke(cli, ["--workspace", str(lab_run["workspace"].root), "benchmark",
                                      "-n", "10", "--body-file", str(body_file), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["requests"] == 10
    assert figures["failed"] == 0
    assert figures["latency_ms"]["p50"] > 0
