"""The local scoring service over real HTTP on loopback, with a small real model.

The model here is a plain scikit-learn pipeline so that these tests do not depend on the AutoML
search; the end-to-end test covers a model that `lab train` registered.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
import requests

from lab.client import EXERCISE_RECORDS
from lab.errors import ServiceError
from lab.service import read_request_log
from local_scoring.keys import read_keys
from local_scoring.process import ServiceSpec, start, stop

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def service(small_model_dir: Path, tmp_path_factory):
    root = tmp_path_factory.mktemp("services")
    state = start(root, ServiceSpec(name="svc", model_dir=small_model_dir, port=0))
    keys = read_keys(root / "svc" / "keys.json")
    yield {"state": state, "keys": keys, "root": root, "uri": state["scoring_uri"]}
    stop(root, "svc")


def post(uri: str, body, key: str | None = None, **headers) -> requests.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(uri, json=body, headers=headers, timeout=TIMEOUT_S)


def test_score_without_key_is_401(service):
    response = post(service["uri"], {"data": EXERCISE_RECORDS})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "missing Authorization header" in response.json()["message"]


def test_score_with_wrong_key_is_401(service):
    response = post(service["uri"], {"data": EXERCISE_RECORDS}, key="not-the-key")
    assert response.status_code == 401
    assert response.json() == {"message": "invalid key; use the service's primary or secondary key (`lab keys show`)"}


def test_score_with_basic_scheme_is_401(service):
    response = requests.post(service["uri"], json={"data": EXERCISE_RECORDS},
                             headers={"Authorization": f"Basic {service['keys']['primaryKey']}"}, timeout=TIMEOUT_S)
    assert response.status_code == 401


@pytest.mark.parametrize("which", ["primaryKey", "secondaryKey"])
def test_score_with_each_key_is_200(service, which):
    response = post(service["uri"], {"data": EXERCISE_RECORDS}, key=service["keys"][which])
    assert response.status_code == 200
    assert set(response.json()["result"]) <= {"yes", "no"}
    assert len(response.json()["result"]) == 2


def test_score_matches_columns_by_name(service, small_model_dir):
    """The exercise sends keys in alphabetical order; the answer must equal in-process scoring."""
    import joblib

    model = joblib.load(small_model_dir / "model.pkl")
    schema = json.loads((small_model_dir / "schema.json").read_text())
    names = [column["name"] for column in schema["columns"]]
    expected = list(model.predict(pd.DataFrame(EXERCISE_RECORDS)[names]))
    assert list(EXERCISE_RECORDS[0]) != names
    response = post(service["uri"], {"data": EXERCISE_RECORDS}, key=service["keys"]["primaryKey"])
    assert response.json()["result"] == expected


def test_health_and_swagger_need_no_key(service):
    base = service["uri"].rsplit("/", 1)[0]
    health = requests.get(base + "/", timeout=TIMEOUT_S)
    swagger = requests.get(base + "/swagger.json", timeout=TIMEOUT_S)
    assert health.status_code == 200
    assert health.text.strip() == "Healthy"
    assert swagger.status_code == 200


def test_swagger_lists_training_columns(service, small_model_dir):
    swagger = requests.get(service["state"]["swagger_uri"], timeout=TIMEOUT_S).json()
    properties = swagger["definitions"]["ServiceInput"]["properties"]["data"]["items"]["properties"]
    schema = json.loads((small_model_dir / "schema.json").read_text())
    assert list(properties) == [column["name"] for column in schema["columns"]]
    assert len(properties) == 20
    assert properties["age"]["type"] == "integer"
    assert properties["job"]["type"] == "string"


def test_missing_column_is_400_naming_it(service):
    record = {k: v for k, v in EXERCISE_RECORDS[0].items() if k != "age"}
    response = post(service["uri"], {"data": [record]}, key=service["keys"]["primaryKey"])
    assert response.status_code == 400
    assert response.json()["field"] == "data[0].age"
    assert "missing column(s) 'age'" in response.json()["message"]


def test_wrong_type_is_400_with_value(service):
    record = {**EXERCISE_RECORDS[0], "age": "seventeen"}
    response = post(service["uri"], {"data": [record]}, key=service["keys"]["primaryKey"])
    assert response.status_code == 400
    assert response.json()["message"] == 'column "age" expects an integer, got "seventeen" in data[0]'


def test_keys_file_is_owner_only(service):
    mode = stat.S_IMODE((service["root"] / "svc" / "keys.json").stat().st_mode)
    assert mode == 0o600


def test_request_log_has_no_key_and_no_scoring_for_401(service):
    post(service["uri"], {"data": EXERCISE_RECORDS}, key="wrong-key-for-log-test")
    log_path = service["root"] / "svc" / "requests.jsonl"
    text = log_path.read_text()
    assert service["keys"]["primaryKey"] not in text
    assert "wrong-key-for-log-test" not in text
    unauthorized = [r for r in read_request_log(log_path) if r["status"] == 401]
    assert unauthorized
    assert all(record["rows"] is None for record in unauthorized)
    assert {"time", "request_id", "method", "path", "status", "duration_ms", "payload_bytes", "rows",
            "error_class"} <= set(unauthorized[0])


def test_deploy_missing_model_file_fails_before_start(tmp_path):
    with pytest.raises(ServiceError, match="model.pkl not found"):
        start(tmp_path / "services", ServiceSpec(name="broken", model_dir=tmp_path / "nowhere", port=0))


def test_deploy_corrupt_model_file_fails(tmp_path, small_model_dir):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("schema.json", "sample.json"):
        (folder / name).write_bytes((small_model_dir / name).read_bytes())
    (folder / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ServiceError, match="cannot be loaded"):
        start(tmp_path / "services", ServiceSpec(name="broken", model_dir=folder, port=0))
    assert not (tmp_path / "services" / "broken" / "state.json").exists()


def test_stop_twice_reports_not_running(small_model_dir, tmp_path):
    from lab.service import stop as stop_service
    from lab.workspace import Workspace

    workspace = Workspace(tmp_path / "ws")
    start(workspace.services_dir, ServiceSpec(name="svc", model_dir=small_model_dir, port=0))
    first = stop_service(workspace, "svc")
    second = stop_service(workspace, "svc")
    assert first[1] is True
    assert second[1] is False


def test_deploy_foreign_address_is_not_port_in_use(small_model_dir, tmp_path):
    # 192.0.2.1 is a documentation address that no machine has; binding it sends no packet.
    with pytest.raises(ServiceError, match="cannot bind 192.0.2.1:5999"):
        start(tmp_path / "services", ServiceSpec(name="svc", model_dir=small_model_dir, host="192.0.2.1", port=5999))
