"""When the front writes the request-log record, how it reads the app's response body, and what it
sends when gunicorn interrupts a request by raising SystemExit in the worker.

The front runs without a socket here, as in test_service_front.py, with a stub app behind it.
"""

from __future__ import annotations

import io
import json

from local_scoring.front import FrontConfig
from test_service_front import ORIGIN, StubApp, keys, log_records, make_front, request  # noqa: F401 - keys is a fixture


def test_record_written_before_start_response(tmp_path, keys):
    front = make_front(tmp_path, StubApp(headers=[("x-lab-rows-scored", "2")]))
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/score", "wsgi.input": io.BytesIO(b"{}"), "CONTENT_LENGTH": "2",
               "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {keys['primaryKey']}",
               "HTTP_X_REQUEST_ID": "early-1"}
    seen_at_start = []

    def start_response(status, headers, exc_info=None):
        seen_at_start.extend(log_records(tmp_path))

    body = front(environ, start_response)

    assert [(entry["request_id"], entry["status"], entry["rows"]) for entry in seen_at_start] == [("early-1", 200, 2)]
    assert b"".join(body) == b'{"result": ["no"]}'


def test_app_body_is_closed_before_return(tmp_path, keys):
    closed = []

    class ClosingBody(list):
        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return ClosingBody([b'{"result": ', b'["yes"]}'])

    front = make_front(tmp_path, app)
    status, _, payload = request(front, "GET", "/", body=b"")

    assert status == 200
    assert payload == b'{"result": ["yes"]}'
    assert closed == [True]


def test_write_callable_output_is_kept(tmp_path, keys):
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first ")
        return [b"second"]

    _, _, payload = request(make_front(tmp_path, app), "GET", "/", body=b"")

    assert payload == b"first second"


def test_body_iteration_error_is_500(tmp_path, keys):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])

        def chunks():
            yield b"{"
            raise RuntimeError("broken body")

        return chunks()

    status, headers, payload = request(make_front(tmp_path, app), key=keys["primaryKey"], x_request_id="rid-body")

    assert status == 500
    assert headers["x-request-id"] == "rid-body"
    assert json.loads(payload)["request_id"] == "rid-body"
    assert log_records(tmp_path)[0]["error_class"] == "FrontError"


def exiting_app(code: int):
    """Return an app that raises ``SystemExit(code)`` as gunicorn's signal handlers do mid-request."""

    def app(environ, start_response):
        raise SystemExit(code)

    return app


def test_worker_timeout_is_json_500(tmp_path, keys):
    front = make_front(tmp_path, exiting_app(1), worker_timeout_s=2)

    status, headers, payload = request(front, key=keys["primaryKey"], x_request_id="slow-1", origin=ORIGIN)

    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert headers["x-request-id"] == "slow-1"
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert json.loads(payload) == {
        "message": "Request slow-1 ran over the worker timeout of 2 s (WORKER_TIMEOUT), so gunicorn ended its "
                   "worker. Raise the limit with `lab deploy --worker-timeout SECONDS`, or send fewer records "
                   "per request.",
        "request_id": "slow-1",
    }
    assert [(entry["status"], entry["error_class"]) for entry in log_records(tmp_path)] == [(500, "WorkerTimeout")]


def test_worker_timeout_without_known_limit(tmp_path, keys):
    _, _, payload = request(make_front(tmp_path, exiting_app(1)), key=keys["primaryKey"])

    assert json.loads(payload)["message"].startswith("Request ")
    assert "ran over the worker timeout (WORKER_TIMEOUT)" in json.loads(payload)["message"]


def test_worker_quit_is_json_503(tmp_path, keys):
    status, headers, payload = request(make_front(tmp_path, exiting_app(0)), key=keys["primaryKey"],
                                       x_request_id="quit-1")

    assert status == 503
    assert headers["Content-Type"] == "application/json"
    assert headers["x-request-id"] == "quit-1"
    assert json.loads(payload)["request_id"] == "quit-1"
    assert "shutting down" in json.loads(payload)["message"]
    assert [(entry["status"], entry["error_class"]) for entry in log_records(tmp_path)] == [(503, "WorkerShutdown")]


def test_worker_timeout_setting_read_from_env(monkeypatch):
    monkeypatch.setenv("WORKER_TIMEOUT", "45")
    assert FrontConfig.from_env().worker_timeout_s == 45
    monkeypatch.delenv("WORKER_TIMEOUT")
    assert FrontConfig.from_env().worker_timeout_s is None
