"""Faults, timeouts, workers and the CLI against the local service over loopback HTTP.

The models here wrap the small real model and misbehave on marked records (a fixed ``duration``
value): they raise, or sleep past a timeout. The gunicorn workers unpickle them from this
module, so the service gets this folder on its PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import joblib
import pytest
import requests
from click.testing import CliRunner

from lab.cli import cli
from lab.errors import ServiceError
from lab.service import read_request_log
from lab.workspace import Workspace
from local_scoring import process
from local_scoring.keys import read_keys

TIMEOUT_S = 60
FAULT_DURATION = 4_444  # a record with this duration makes the model raise
SLOW_DURATION = 3_333  # a record with this duration makes the model sleep SLOW_SLEEP_S
SLOW_SLEEP_S = 8.0
TESTS_DIR = str(Path(__file__).parent)


class FaultyModel:
    """The small model, but predict raises or sleeps on the marked records."""

    def __init__(self, model):
        self.model = model
        self.classes_ = model.classes_

    def _check(self, X):
        if (X["duration"] == FAULT_DURATION).any():
            raise RuntimeError("simulated fault inside the model")
        if (X["duration"] == SLOW_DURATION).any():
            time.sleep(SLOW_SLEEP_S)

    def predict(self, X):
        self._check(X)
        return self.model.predict(X)

    def predict_proba(self, X):
        self._check(X)
        return self.model.predict_proba(X)


class NeverScores:
    """Loads, but cannot score anything, like a model pickled for other columns."""

    classes_ = ["no", "yes"]

    def predict(self, X):
        raise KeyError("columns not found: ['balance']")

    predict_proba = predict


def copy_model(small_model_dir: Path, folder: Path, model) -> Path:
    folder.mkdir(parents=True)
    for name in ("schema.json", "sample.json"):
        (folder / name).write_bytes((small_model_dir / name).read_bytes())
    joblib.dump(model, folder / "model.pkl")
    return folder


def service_env() -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": TESTS_DIR + (os.pathsep + existing if existing else "")}


def record(small_model_dir: Path, **changes) -> dict:
    first = json.loads((small_model_dir / "sample.json").read_text())["data"][0]
    return {**first, **changes}


def run_cli(workspace: Workspace, *args: str):
    return CliRunner().invoke(cli, ["--workspace", str(workspace.root), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def faulty(small_model_dir, tmp_path_factory):
    """A v1 service with 2 workers, double-encoded responses and a 3 s scoring timeout."""
    root = tmp_path_factory.mktemp("faulty")
    workspace = Workspace(root / "ws")
    model_dir = copy_model(small_model_dir, root / "model", FaultyModel(joblib.load(small_model_dir / "model.pkl")))
    spec = process.ServiceSpec(name="faulty", model_dir=model_dir, port=0, workers=2, scoring_timeout_ms=3000,
                               double_encoded=True, extra_env=service_env())
    state = process.start(workspace.services_dir, spec)
    keys = read_keys(Path(state["keys_file"]))
    yield {"state": state, "keys": keys, "workspace": workspace, "uri": state["scoring_uri"]}
    process.stop(workspace.services_dir, "faulty")


def post(service, body, key=None, **headers) -> requests.Response:
    headers["Authorization"] = f"Bearer {key or service['keys']['primaryKey']}"
    return requests.post(service["uri"], json=body, headers=headers, timeout=TIMEOUT_S)


def test_model_fault_is_500_with_request_id(faulty, small_model_dir):
    response = post(faulty, {"data": [record(small_model_dir, duration=FAULT_DURATION)]},
                    **{"x-request-id": "fault-0001"})
    assert response.status_code == 500
    assert response.json() == {
        "message": "An unexpected error occurred in the model while scoring. "
                   "The service log has the details under request id fault-0001.",
        "request_id": "fault-0001",
    }
    assert response.headers["x-request-id"] == "fault-0001"
    assert response.headers["x-ms-run-function-failed"] == "True"


def test_model_fault_is_in_both_logs_under_its_id(faulty, small_model_dir, wait_for_records):
    post(faulty, {"data": [record(small_model_dir, duration=FAULT_DURATION)]}, **{"x-request-id": "fault-0002"})
    records = wait_for_records(Path(faulty["state"]["request_log"]), "fault-0002")
    assert len(records) == 1
    assert records[0]["status"] == 500
    assert records[0]["error_class"] == "ModelError:RuntimeError"
    server_log = Path(faulty["state"]["log"]).read_text()
    assert "request fault-0002: the model failed to score 1 rows" in server_log
    assert "RuntimeError: simulated fault inside the model" in server_log


def test_record_is_logged_before_response(faulty, small_model_dir):
    # No waiting: the front writes each record before it sends the response. Several requests,
    # because a record written just after the response would still be found some of the time.
    log = Path(faulty["state"]["request_log"])
    missing = []
    for index in range(20):
        request_id = f"log-order-{index:02d}"
        response = post(faulty, {"data": [record(small_model_dir)]}, **{"x-request-id": request_id})
        assert response.status_code == 200
        found = [entry for entry in read_request_log(log) if entry["request_id"] == request_id]
        if len(found) != 1:
            missing.append(request_id)
    assert missing == []


def test_scoring_timeout_is_500(faulty, small_model_dir, wait_for_records):
    response = post(faulty, {"data": [record(small_model_dir, duration=SLOW_DURATION)]},
                    **{"x-request-id": "scoring-timeout-05"})
    assert response.status_code == 500
    assert response.json() == {"message": "Scoring timeout after 3000 ms"}
    records = wait_for_records(Path(faulty["state"]["request_log"]), "scoring-timeout-05")
    assert [entry["error_class"] for entry in records] == ["ScoringTimeout"]


def test_double_encoded_answer_decodes(faulty, small_model_dir):
    from lab.client import score_records

    response = post(faulty, {"data": [record(small_model_dir)]})
    assert isinstance(response.json(), str)
    result = score_records(faulty["uri"], faulty["keys"]["primaryKey"], [record(small_model_dir)], body_path=None)
    assert result.double_encoded is True
    assert result.predictions == json.loads(response.json())["result"]


def test_worker_count_takes_effect(faulty):
    master = faulty["state"]["pid"]
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 2


def test_workers_get_server_settings(faulty):
    master = faulty["state"]["pid"]
    worker = Path(f"/proc/{master}/task/{master}/children").read_text().split()[0]
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{worker}/environ").read_text().split("\0") if "=" in item)
    assert environ["WORKER_COUNT"] == "2"
    assert environ["SCORING_TIMEOUT_MS"] == "3000"
    assert environ["OMP_NUM_THREADS"] == "1"
    assert environ["LAB_DOUBLE_ENCODED"] == "1"


def test_logs_failed_shows_fault_with_id(faulty, small_model_dir):
    post(faulty, {"data": [record(small_model_dir, duration=FAULT_DURATION)]}, **{"x-request-id": "fault-cli-03"})
    result = run_cli(faulty["workspace"], "logs", "--failed", "--tail", "50")
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if "fault-cl" in line)
    assert " 500 " in line
    assert "ModelError:RuntimeError" in line
    assert "requests (" in result.output.splitlines()[-1]
    assert "p99" in result.output.splitlines()[-1]


def test_logs_json_stdout_is_json_lines(faulty, small_model_dir):
    post(faulty, {"data": [record(small_model_dir)]}, **{"x-request-id": "json-cli-04"})
    result = run_cli(faulty["workspace"], "logs", "--json", "--tail", "50")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert "json-cli-04" in [entry["request_id"] for entry in records]
    assert "requests (" in result.stderr


def test_keys_regenerate_swaps_the_key(faulty, small_model_dir):
    old = read_keys(Path(faulty["state"]["keys_file"]))
    result = run_cli(faulty["workspace"], "keys", "regenerate", "secondary", "--name", "faulty")
    new = read_keys(Path(faulty["state"]["keys_file"]))
    assert result.exit_code == 0
    assert new["secondaryKey"] not in result.output
    assert new["primaryKey"] == old["primaryKey"]
    assert post(faulty, {"data": [record(small_model_dir)]}, key=old["secondaryKey"]).status_code == 401
    assert post(faulty, {"data": [record(small_model_dir)]}, key=new["secondaryKey"]).status_code == 200


def test_service_that_cannot_score_never_gets_healthy(small_model_dir, tmp_path, monkeypatch):
    model_dir = copy_model(small_model_dir, tmp_path / "model", NeverScores())
    with pytest.raises(ServiceError, match="cannot score its own sample"):
        process.start(tmp_path / "services", process.ServiceSpec(name="never", model_dir=model_dir, port=0,
                                                                 extra_env=service_env()))
    # Without the check in the deploying process, the workers fail to boot, so health never responds.
    monkeypatch.setattr(process, "check_model_dir", lambda model_dir: None)
    with pytest.raises(ServiceError, match="exited with code"):
        process.start(tmp_path / "services", process.ServiceSpec(name="never", model_dir=model_dir, port=0,
                                                                 extra_env=service_env(), ready_timeout_s=60))


@pytest.fixture(scope="module")
def short_worker_timeout(small_model_dir, tmp_path_factory):
    """A v2 service whose gunicorn worker timeout (2 s) is shorter than the slow record's sleep."""
    root = tmp_path_factory.mktemp("worker-timeout")
    workspace = Workspace(root / "ws")
    model_dir = copy_model(small_model_dir, root / "model", FaultyModel(joblib.load(small_model_dir / "model.pkl")))
    spec = process.ServiceSpec(name="short", model_dir=model_dir, port=0, worker_timeout_s=2, payload_style="v2",
                               extra_env=service_env())
    state = process.start(workspace.services_dir, spec)
    yield {"state": state, "keys": read_keys(Path(state["keys_file"])), "workspace": workspace,
           "uri": state["scoring_uri"]}
    process.stop(workspace.services_dir, "short")


def worker_pids(master: int) -> list[str]:
    return Path(f"/proc/{master}/task/{master}/children").read_text().split()


def test_worker_timeout_is_logged(short_worker_timeout, small_model_dir, wait_for_records):
    master = short_worker_timeout["state"]["pid"]
    [timed_out_worker] = worker_pids(master)
    body = {"Inputs": {"data": [record(small_model_dir, duration=SLOW_DURATION)]}}

    response = post(short_worker_timeout, body, **{"x-request-id": "worker-timeout-01"})

    # gunicorn raises SystemExit in the worker, the front responds with JSON, and the worker ends.
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["x-request-id"] == "worker-timeout-01"
    assert response.json() == {
        "message": "Request worker-timeout-01 ran over the worker timeout of 2 s (WORKER_TIMEOUT), so gunicorn "
                   "ended its worker. Raise the limit with `lab deploy --worker-timeout SECONDS`, or send fewer "
                   "records per request.",
        "request_id": "worker-timeout-01",
    }
    log = Path(short_worker_timeout["state"]["request_log"])
    records = wait_for_records(log, "worker-timeout-01")
    assert [(r["status"], r["error_class"]) for r in records] == [(500, "WorkerTimeout")]

    # The only worker has left its loop, so a new worker serves the next request.
    next_response = post(short_worker_timeout, {"Inputs": {"data": [record(small_model_dir)]}})
    assert next_response.status_code == 200
    assert [pid for pid in worker_pids(master) if pid != timed_out_worker] != []


def test_endpoint_command_reads_v2_style_from_swagger(short_worker_timeout, tmp_path):
    body_file = tmp_path / "data.json"
    result = run_cli(short_worker_timeout["workspace"], "endpoint", "--name", "short", "--body-file", str(body_file))
    assert result.exit_code == 0, result.output
    assert '"Results"' in result.output
    assert "Inputs" in json.loads(body_file.read_text())
