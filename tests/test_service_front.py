"""The front as WSGI middleware without a socket: a stub app behind it records what gets through."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from local_scoring.front import Front, FrontConfig
from local_scoring.keys import write_keys

ORIGIN = "http://127.0.0.1:8000"
MAX_BODY_BYTES = 1_000


class StubApp:
    """A WSGI app that records the bodies it receives and responds like the inference server."""

    def __init__(self, status: str = "200 OK", body: bytes = b'{"result": ["no"]}', headers=None):
        self.status, self.body, self.headers = status, body, headers or []
        self.received: list[bytes] = []

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.received.append(environ["wsgi.input"].read(length))
        start_response(self.status, [("Content-Type", "application/json"), ("Content-Length", str(len(self.body))),
                                     *self.headers])
        return [self.body]


@pytest.fixture
def keys(tmp_path) -> dict:
    return write_keys(tmp_path / "keys.json")


def make_front(tmp_path: Path, app, **config) -> Front:
    settings = {"keys_file": tmp_path / "keys.json", "request_log": tmp_path / "requests.jsonl",
                "max_body_bytes": MAX_BODY_BYTES, "cors_origins": (ORIGIN,), **config}
    return Front(app, FrontConfig(**settings))


def request(front: Front, method: str = "POST", path: str = "/score", body: bytes = b"{}", key: str | None = None,
            chunked: bool = False, **headers) -> tuple[int, dict, bytes]:
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/json", "HTTP_HOST": "127.0.0.1:5001",
    }
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    if key is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    captured = {}

    def start_response(status, response_headers, exc_info=None):
        captured["status"] = int(status.split()[0])
        captured["headers"] = dict(response_headers)

    chunks = front(environ, start_response)
    payload = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return captured["status"], captured["headers"], payload


def log_records(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]


def test_valid_key_reaches_app(tmp_path, keys):
    app = StubApp(headers=[("x-lab-rows-scored", "1")])
    status, headers, _ = request(make_front(tmp_path, app), key=keys["primaryKey"], body=b'{"data": []}')
    assert status == 200
    assert app.received == [b'{"data": []}']
    assert "x-lab-rows-scored" not in headers
    assert log_records(tmp_path)[0]["rows"] == 1


def test_wrong_key_never_reaches_app(tmp_path, keys):
    app = StubApp()
    status, headers, payload = request(make_front(tmp_path, app), key="wrong")
    assert status == 401
    assert app.received == []
    assert headers["WWW-Authenticate"] == 'Bearer realm="score"'
    assert log_records(tmp_path)[0]["error_class"] == "Unauthorized"


def test_chunked_body_over_limit_is_413(tmp_path, keys):
    app = StubApp()
    status, _, payload = request(make_front(tmp_path, app), key=keys["primaryKey"], body=b" " * (MAX_BODY_BYTES + 1),
                                 chunked=True)
    assert status == 413
    assert app.received == []
    assert json.loads(payload)["message"].startswith("request body (chunked) is over the limit of 1000 bytes")


def test_chunked_body_under_limit_gets_length(tmp_path, keys):
    app = StubApp()
    status, _, _ = request(make_front(tmp_path, app), key=keys["primaryKey"], body=b'{"data": 1}', chunked=True)
    assert status == 200
    assert app.received == [b'{"data": 1}']
    assert log_records(tmp_path)[0]["payload_bytes"] == len(b'{"data": 1}')


def test_body_not_utf8_is_400(tmp_path, keys):
    app = StubApp()
    status, _, payload = request(make_front(tmp_path, app), key=keys["primaryKey"], body=b'{"a": "\xff"}')
    assert status == 400
    assert app.received == []
    assert json.loads(payload) == {"message": "POST body could not be decoded as JSON: byte 0xff at position 7 is "
                                              "not valid UTF-8; send the JSON encoded as UTF-8"}


def test_utf16_body_passes(tmp_path, keys):
    app = StubApp()
    body = '{"data": "é"}'.encode("utf-16")
    status, _, _ = request(make_front(tmp_path, app), key=keys["primaryKey"], body=body)
    assert status == 200
    assert app.received == [body]


def test_preflight_needs_no_key(tmp_path, keys):
    app = StubApp()
    status, headers, payload = request(make_front(tmp_path, app), "OPTIONS", body=b"", origin=ORIGIN,
                                       access_control_request_method="POST",
                                       access_control_request_headers="authorization,content-type")
    assert status == 204
    assert payload == b""
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert app.received == []


def test_preflight_without_cors_config_is_403(tmp_path, keys):
    status, _, payload = request(make_front(tmp_path, StubApp(), cors_origins=()), "OPTIONS", body=b"",
                                 origin=ORIGIN, access_control_request_method="POST")
    assert status == 403
    assert json.loads(payload)["message"] == (f"origin {ORIGIN} is not allowed; CORS is off for this service; "
                                              "deploy it with --cors-origins")


def test_app_cors_headers_are_replaced(tmp_path, keys):
    app = StubApp(headers=[("Access-Control-Allow-Origin", "*")])
    _, headers, _ = request(make_front(tmp_path, app), key=keys["primaryKey"], origin=ORIGIN)
    assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_swagger_host_is_rewritten(tmp_path, keys):
    app = StubApp(body=json.dumps({"swagger": "2.0", "schemes": ["https"]}).encode())
    status, headers, payload = request(make_front(tmp_path, app), "GET", "/swagger.json", body=b"")
    assert status == 200
    assert json.loads(payload) == {"swagger": "2.0", "schemes": ["http"], "host": "127.0.0.1:5001"}
    assert headers["Content-Length"] == str(len(payload))


def test_swagger_host_keeps_odd_host_header(tmp_path, keys):
    document = json.dumps({"swagger": "2.0"}).encode()
    _, _, payload = request(make_front(tmp_path, StubApp(body=document)), "GET", "/swagger.json", body=b"",
                            host="evil.example/<script>")
    assert payload == document


def test_app_exception_is_500_with_request_id(tmp_path, keys):
    def failing(environ, start_response):
        raise RuntimeError("bug in the app")

    status, headers, payload = request(make_front(tmp_path, failing), key=keys["primaryKey"], x_request_id="rid-1")
    assert status == 500
    assert headers["x-request-id"] == "rid-1"
    assert json.loads(payload)["request_id"] == "rid-1"
    assert log_records(tmp_path)[0]["error_class"] == "FrontError"


def test_long_request_id_is_replaced(tmp_path, keys):
    _, headers, _ = request(make_front(tmp_path, StubApp()), key="wrong", x_request_id="x" * 101)
    assert len(headers["x-request-id"]) == 36


def test_broken_body_read_is_logged(tmp_path, keys):
    class BrokenInput:
        def read(self, size=-1):
            raise ConnectionResetError("client went away")

    front = make_front(tmp_path, StubApp())
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/score", "wsgi.input": BrokenInput(), "CONTENT_LENGTH": "10",
               "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {keys['primaryKey']}",
               "HTTP_X_REQUEST_ID": "broken-1"}
    with pytest.raises(ConnectionResetError):
        front(environ, lambda *args: None)
    record = log_records(tmp_path)[0]
    assert record["request_id"] == "broken-1"
    assert record["status"] == 499
    assert record["error_class"] == "RequestReadError:ConnectionResetError"
