"""The ACI scoring contract, case by case: exact status, JSON body and headers.

Runs unchanged against the local service (default), the Docker container or a live ACI web
service (see conftest.py for the environment variables). Cases that need the ``lab`` profile
use the ``lab_only`` fixture.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from lab.client import decode_body, extract_predictions

from .conftest import TIMEOUT_S, Target

JSON_TYPE = "application/json"


def call(target: Target, method: str = "POST", path: str = "/score", body=None, *, key: str | None = "primary",
         raw: bytes | None = None, headers: dict | None = None, params: dict | None = None) -> requests.Response:
    """Send one request; ``key`` is "primary", "secondary", None (no header) or a literal key."""
    sent = {"Content-Type": JSON_TYPE}
    if key is not None:
        value = {"primary": target.key, "secondary": target.secondary_key}.get(key, key)
        sent["Authorization"] = f"Bearer {value}"
    sent.update(headers or {})
    data = raw
    if data is None and body is not None:
        data = json.dumps(body).encode("utf-8")
    return requests.request(method, target.base + path, data=data, headers=sent, params=params, timeout=TIMEOUT_S)


def predictions_of(response: requests.Response) -> list:
    body, _ = decode_body(response.text)
    predictions = extract_predictions(body)
    assert isinstance(predictions, list), f"no predictions in {response.text[:200]}"
    return predictions


def first_column(target: Target, json_type: str) -> str:
    return next(name for name, schema in target.columns.items() if schema.get("type") == json_type)


def data_field(target: Target, suffix: str = "") -> str:
    return ("Inputs.data" if target.style == "v2" else "data") + suffix


# -- open routes ---------------------------------------------------------------------------------


def test_health_is_open_and_healthy(target):
    response = call(target, "GET", "/", key=None)
    assert response.status_code == 200
    assert response.text == "Healthy"


def test_swagger_v2_is_open_with_bearer_scheme(target):
    response = call(target, "GET", "/swagger.json", key=None)
    document = response.json()
    assert response.status_code == 200
    assert document["swagger"] == "2.0"
    assert document["securityDefinitions"]["Bearer"] == {
        "type": "apiKey", "name": "Authorization", "in": "header", "description": "For example: Bearer abc123",
    }
    assert document["paths"]["/score"]["post"]["security"] == [{"Bearer": []}]


def test_swagger_v3_is_openapi_303(target):
    response = call(target, "GET", "/swagger.json", key=None, params={"version": "3"})
    document = response.json()
    assert response.status_code == 200
    assert document["openapi"] == "3.0.3"
    assert document["components"]["securitySchemes"]["Bearer"]["type"] == "apiKey"


def test_swagger_unknown_version_is_404(target):
    response = call(target, "GET", "/swagger.json", key=None, params={"version": "4"})
    assert response.status_code == 404
    assert response.json() == {"message": "Swagger version [4] is not valid. Supported versions: [2, 3, 3.1]."}


def test_swagger_examples_are_the_models_sample(target):
    records = target.sample_records
    assert isinstance(records, list) and records
    assert list(records[0]) == list(target.columns)


def test_swagger_names_the_served_host(target, lab_only):
    v2 = call(target, "GET", "/swagger.json", key=None).json()
    v3 = call(target, "GET", "/swagger.json", key=None, params={"version": "3"}).json()
    parts = urlsplit(target.scoring_uri)
    assert v2["host"] == parts.netloc
    assert v2["schemes"] == [parts.scheme]
    assert v3["servers"] == [{"url": f"{parts.scheme}://{parts.netloc}"}]


# -- key auth ------------------------------------------------------------------------------------


def test_score_without_key_is_401(target):
    response = call(target, body=target.wrap(target.sample_records[:1]), key=None)
    assert response.status_code == 401


def test_score_with_wrong_key_is_401(target):
    response = call(target, body=target.wrap(target.sample_records[:1]), key="not-a-key-of-this-service")
    assert response.status_code == 401


def test_401_body_and_header(target, lab_only):
    response = call(target, body=target.wrap(target.sample_records[:1]), key=None)
    assert response.json() == {"message": "missing Authorization header; send 'Authorization: Bearer <key>'"}
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="score"'
    assert response.headers["Content-Type"] == JSON_TYPE


def test_401_for_wrong_key_names_the_fix(target, lab_only):
    response = call(target, body=target.wrap(target.sample_records[:1]), key="not-a-key-of-this-service")
    assert response.json() == {"message": "invalid key; use the service's primary or secondary key (`lab keys show`)"}


def test_401_for_basic_scheme(target, lab_only):
    response = call(target, body=target.wrap(target.sample_records[:1]), key=None,
                    headers={"Authorization": f"Basic {target.key}"})
    assert response.status_code == 401
    assert response.json() == {"message": "Authorization header must have the form 'Bearer <key>'"}


@pytest.mark.parametrize("which", ["primary", "secondary"])
def test_score_with_each_key_is_200(target, which):
    if which == "secondary" and target.secondary_key is None:
        pytest.skip("no secondary key given (LAB_CONTRACT_SECONDARY_KEY)")
    records = target.sample_records[:2]
    response = call(target, body=target.wrap(records), key=which)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_TYPE
    assert len(predictions_of(response)) == len(records)


# -- responses of the inference server -----------------------------------------------------------


def test_body_not_json_is_400(target):
    response = call(target, raw=b"not json")
    assert response.status_code == 400
    assert response.json() == {"message": "POST body could not be decoded as JSON: Expecting value: line 1 column 1 (char 0)"}


def test_body_not_utf8_is_400(target, lab_only):
    # The inference server alone responds to this with a 500, so the front rejects it first.
    response = call(target, raw=b'{"data": "\xf6"}')
    assert response.status_code == 400
    assert response.json() == {"message": "POST body could not be decoded as JSON: byte 0xf6 at position 10 is "
                                          "not valid UTF-8; send the JSON encoded as UTF-8"}


def test_empty_body_is_400(target):
    response = call(target, raw=b"")
    assert response.status_code == 400
    assert response.json() == {"message": "POST body is empty. Expecting a JSON dictionary."}


@pytest.mark.parametrize("body", [[1, 2], "text"], ids=["list", "string"])
def test_body_not_a_dictionary_is_400(target, body):
    response = call(target, body=body)
    assert response.status_code == 400
    assert response.json() == {"message": "POST body should be a JSON dictionary."}


def test_wrong_content_type_is_415(target):
    response = call(target, raw=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json() == {"message": "Expects Content-Type to be application/json"}


def test_put_score_is_405(target):
    response = call(target, "PUT", body=target.wrap(target.sample_records[:1]))
    assert response.status_code == 405
    assert response.json() == {"message": "The method is not allowed for the requested URL."}


def test_get_score_with_query_scores(target):
    records = target.sample_records[:1]
    params = {key: json.dumps(value) for key, value in target.wrap(records).items()}
    response = call(target, "GET", params=params)
    assert response.status_code == 200
    assert len(predictions_of(response)) == 1


def test_unknown_path_is_404(target):
    response = call(target, "GET", "/no-such-route")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == JSON_TYPE
    assert "not found" in response.json()["message"]


def test_request_id_is_echoed(target, lab_only):
    response = call(target, body=target.wrap(target.sample_records[:1]), headers={"x-request-id": "contract-0001"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "contract-0001"


# -- input handling (lab profile: ACI responds to these with a generic 500) ---------------------------


def test_keys_in_any_order_score_the_same(target, lab_only):
    records = target.sample_records[:3]
    reordered = [dict(sorted(record.items(), reverse=True)) for record in records]
    expected = predictions_of(call(target, body=target.wrap(records)))
    response = call(target, body=target.wrap(reordered))
    assert response.status_code == 200
    assert predictions_of(response) == expected


def test_numbers_as_strings_score_the_same(target, lab_only):
    record = target.sample_records[0]
    as_strings = {name: str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
                  for name, value in record.items()}
    expected = predictions_of(call(target, body=target.wrap([record])))
    response = call(target, body=target.wrap([as_strings]))
    assert response.status_code == 200
    assert predictions_of(response) == expected


def test_null_in_numeric_column_is_imputed(target, lab_only):
    column = first_column(target, "number")
    record = {**target.sample_records[0], column: None}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 200
    assert len(predictions_of(response)) == 1


def test_missing_column_is_400_naming_it(target, lab_only):
    column = first_column(target, "integer")
    record = {name: value for name, value in target.sample_records[0].items() if name != column}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert response.json() == {
        "message": f"{data_field(target, '[0]')} is missing column(s) '{column}'; every record needs all "
                   f"{len(target.columns)} columns of the swagger schema (send null for an unknown value)",
        "field": data_field(target, f"[0].{column}"),
    }


def test_unknown_column_is_400_naming_it(target, lab_only):
    record = {**target.sample_records[0], "not_a_column": 1}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert response.json() == {
        "message": f'{data_field(target, "[0]")} has unknown column(s) "not_a_column"; '
                   "the model expects only the columns of the swagger schema",
        "field": data_field(target, "[0].not_a_column"),
    }


def test_wrong_type_is_400_with_value(target, lab_only):
    column = first_column(target, "integer")
    record = {**target.sample_records[0], column: "seventeen"}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert response.json() == {
        "message": f'column "{column}" expects an integer, got "seventeen" in {data_field(target, "[0]")}',
        "field": data_field(target, f"[0].{column}"),
    }


def test_long_value_is_truncated_in_message(target, lab_only):
    column = first_column(target, "number")
    record = {**target.sample_records[0], column: "x" * 500}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert "x" * 100 not in response.json()["message"]
    assert f'got "{"x" * 56}... in {data_field(target, "[0]")}' in response.json()["message"]


def test_string_column_with_number_is_400(target, lab_only):
    column = first_column(target, "string")
    record = {**target.sample_records[0], column: 12}
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert response.json()["field"] == data_field(target, f"[0].{column}")


def test_positional_record_is_400(target, lab_only):
    record = list(target.sample_records[0].values())
    response = call(target, body=target.wrap([record]))
    assert response.status_code == 400
    assert response.json()["field"] == data_field(target, "[0]")
    assert "positional lists are rejected" in response.json()["message"]


def test_empty_data_list_is_400(target, lab_only):
    response = call(target, body=target.wrap([]))
    assert response.status_code == 400
    assert response.json() == {
        "message": f"'{data_field(target)}' is an empty list; send at least one record",
        "field": data_field(target),
    }


def test_batch_over_row_limit_is_400(target, lab_only):
    records = target.sample_records[:1] * (target.max_rows + 1)
    response = call(target, body=target.wrap(records))
    assert response.status_code == 400
    assert response.json() == {
        "message": f"'{data_field(target)}' has {target.max_rows + 1} records, more than the limit of "
                   f"{target.max_rows} per request; split the batch",
        "field": data_field(target),
    }


def test_missing_wrapper_key_names_the_form(target, lab_only):
    response = call(target, body={"records": target.sample_records[:1]})
    expected = {
        "v1": {"message": "the body has no 'data' key (or it is null); this service takes {\"data\": [record, ...]}",
               "field": "data"},
        "v2": {"message": "the body has no 'Inputs' key (or it is null); this service takes {\"Inputs\": {\"data\": "
                          "[record, ...]}, \"GlobalParameters\": {\"method\": \"predict\"}}",
               "field": "Inputs"},
    }[target.style]
    assert response.status_code == 400
    assert response.json() == expected


def test_other_payload_style_names_the_form(target, lab_only):
    records = target.sample_records[:1]
    other = {"Inputs": {"data": records}} if target.style == "v1" else {"data": records}
    response = call(target, body=other)
    assert response.status_code == 400
    assert response.json()["field"] == ("data" if target.style == "v1" else "Inputs")
    assert f"this service takes the {target.style} payload" in response.json()["message"]


# -- body limit and CORS -------------------------------------------------------------------------


def _raw_exchange(target: Target, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send a hand-made HTTP/1.1 request and return status, headers and body of the response."""
    parts = urlsplit(target.scoring_uri)
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=TIMEOUT_S) as sock:
        sock.sendall(head.encode("ascii") + body)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    header_block, _, payload = received.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def test_declared_body_over_limit_is_413(target, lab_only):
    parts = urlsplit(target.scoring_uri)
    size = target.max_body_bytes + 1
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {target.key}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n")
    status, headers, payload = _raw_exchange(target, head)
    assert status == 413
    assert headers["content-type"] == JSON_TYPE
    assert json.loads(payload) == {
        "message": f"request body of {size} bytes is over the limit of {target.max_body_bytes} bytes; "
                   "send fewer records per request",
    }


def test_chunked_body_over_limit_is_413(target, lab_only):
    def chunks():
        sent, piece = 0, b" " * 65536
        while sent <= target.max_body_bytes:
            yield piece
            sent += len(piece)

    response = requests.post(target.scoring_uri, data=chunks(), timeout=TIMEOUT_S, headers={
        "Content-Type": JSON_TYPE, "Authorization": f"Bearer {target.key}",
    })
    assert response.status_code == 413
    assert response.json() == {
        "message": f"request body (chunked) is over the limit of {target.max_body_bytes} bytes; "
                   "send fewer records per request",
    }


def test_chunked_body_under_limit_scores(target, lab_only):
    payload = json.dumps(target.wrap(target.sample_records[:2])).encode("utf-8")
    response = requests.post(target.scoring_uri, data=iter([payload[:10], payload[10:]]), timeout=TIMEOUT_S,
                             headers={"Content-Type": JSON_TYPE, "Authorization": f"Bearer {target.key}"})
    assert response.status_code == 200
    assert len(predictions_of(response)) == 2


def test_cors_preflight_from_allowed_origin(target, lab_only):
    if target.cors_origin is None:
        pytest.skip("no CORS origin known for this service (LAB_CONTRACT_CORS_ORIGIN)")
    response = call(target, "OPTIONS", key=None, headers={
        "Origin": target.cors_origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    })
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == target.cors_origin
    assert response.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_cors_preflight_from_other_origin_is_403(target, lab_only):
    response = call(target, "OPTIONS", key=None, headers={
        "Origin": "http://elsewhere.invalid", "Access-Control-Request-Method": "POST",
    })
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_headers_on_401_for_allowed_origin(target, lab_only):
    if target.cors_origin is None:
        pytest.skip("no CORS origin known for this service (LAB_CONTRACT_CORS_ORIGIN)")
    response = call(target, body=target.wrap(target.sample_records[:1]), key=None,
                    headers={"Origin": target.cors_origin})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == target.cors_origin


# -- the request log (local service only) ---------------------------------------------------------


def test_rejected_key_never_reaches_the_model(target, lab_only):
    if target.request_log is None:
        pytest.skip("the request log is readable only for a service this suite deployed")
    from lab.service import read_request_log

    response = call(target, body=target.wrap(target.sample_records[:1]), key="wrong-key-contract",
                    headers={"x-request-id": "contract-wrong-key"})
    assert response.status_code == 401
    record = next(r for r in read_request_log(target.request_log) if r["request_id"] == "contract-wrong-key")
    assert record["status"] == 401
    assert record["rows"] is None
    assert record["error_class"] == "Unauthorized"
    assert "wrong-key-contract" not in target.request_log.read_text()
