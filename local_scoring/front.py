"""The front of the scoring service: key check, body limit and request log, as WSGI middleware.

In ACI a front container checks the key before a request reaches the scoring container. Here the
same checks run in the gunicorn worker, in front of the inference server's Flask app, and only
the front's socket (127.0.0.1 by default) is bound. A request without a valid key never reaches
the entry script.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from local_scoring.entry import ERROR_CLASS_HEADER, ROWS_HEADER
from local_scoring.keys import KeyFile, matches

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/swagger.json"})
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # client_max_body_size 100m in Azure's nginx
INTERNAL_HEADERS = frozenset({ROWS_HEADER, ERROR_CLASS_HEADER})


@dataclass(frozen=True)
class FrontConfig:
    """Settings of the front, read from the environment the service is started with."""

    keys_file: Path | None
    request_log: Path | None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> "FrontConfig":
        keys_file = os.environ.get("LAB_KEYS_FILE")
        request_log = os.environ.get("LAB_REQUEST_LOG")
        return cls(
            keys_file=Path(keys_file) if keys_file else None,
            request_log=Path(request_log) if request_log else None,
            max_body_bytes=int(os.environ.get("LAB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
        )


@dataclass
class FrontResponse:
    """A response the front answers itself, without calling the inference server."""

    status: str
    body: dict
    headers: list[tuple[str, str]]

    def __call__(self, start_response: Callable) -> Iterable[bytes]:
        payload = json.dumps(self.body).encode("utf-8")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *self.headers]
        start_response(self.status, headers)
        return [payload]


class Front:
    """WSGI middleware: ``Front(inference_server_app, FrontConfig.from_env())``."""

    def __init__(self, app: Callable, config: FrontConfig):
        self.app = app
        self.config = config
        self.keys = KeyFile(config.keys_file) if config.keys_file else None
        self.log_path = config.request_log
        if self.keys is None:
            logger.warning("no keys file configured: key auth is disabled")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        # The inference server takes its request id from x-request-id and returns it in the
        # answer; setting it here gives the log record and the answer the same id.
        request_id = environ.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4())
        environ["HTTP_X_REQUEST_ID"] = request_id
        record = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "request_id": request_id,
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),
            "status": 0,
            "duration_ms": 0.0,
            "payload_bytes": _content_length(environ),
            "rows": None,
            "error_class": None,
        }
        rejection = self._check(environ, record)
        if rejection is not None:
            record["status"] = int(rejection.status.split()[0])
            rejection.headers.append(("x-request-id", request_id))
            result = rejection(start_response)
            self._log(record, started)
            return result

        def capture(status: str, headers: list[tuple[str, str]], exc_info=None):
            record["status"] = int(status.split()[0])
            kept = []
            for name, value in headers:
                lowered = name.lower()
                if lowered == ROWS_HEADER:
                    record["rows"] = int(value)
                elif lowered == ERROR_CLASS_HEADER:
                    record["error_class"] = value
                else:
                    kept.append((name, value))
            if record["status"] >= 500 and record["error_class"] is None:
                record["error_class"] = "ScoringError"
            return start_response(status, kept, exc_info)

        try:
            body = self.app(environ, capture)
        except Exception:
            record["status"] = 500
            record["error_class"] = "FrontError"
            self._log(record, started)
            raise
        return _LoggedBody(body, lambda: self._log(record, started))

    def _check(self, environ: dict, record: dict) -> FrontResponse | None:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if record["payload_bytes"] > self.config.max_body_bytes:
            record["error_class"] = "PayloadTooLarge"
            return FrontResponse(
                "413 Request Entity Too Large",
                {"message": f"request body of {record['payload_bytes']} bytes is over the limit of "
                            f"{self.config.max_body_bytes} bytes; send fewer records per request"},
                [],
            )
        if path in OPEN_PATHS or method == "OPTIONS" or self.keys is None:
            return None
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if not header:
            reason = "missing Authorization header; send 'Authorization: Bearer <key>'"
        elif scheme.lower() != "bearer" or not token.strip():
            reason = "Authorization header must have the form 'Bearer <key>'"
        elif not matches(token.strip(), self.keys.current()):
            reason = "invalid key; use the service's primary or secondary key (`lab keys show`)"
        else:
            return None
        record["error_class"] = "Unauthorized"
        return FrontResponse("401 Unauthorized", {"message": reason}, [("WWW-Authenticate", 'Bearer realm="score"')])

    def _log(self, record: dict, started: float) -> None:
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if self.log_path is None:
            return
        line = json.dumps(record) + "\n"
        # One write of one line on an O_APPEND descriptor, so lines of several workers never mix.
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


class _LoggedBody:
    """Wrap a WSGI response body so the log record is written once the body is closed."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]):
        self.body = body
        self.on_close = on_close

    def __iter__(self):
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()


def _content_length(environ: dict) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
