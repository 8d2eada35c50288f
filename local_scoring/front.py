"""The front of the scoring service: key check, body limit, CORS and request log, as WSGI middleware.

In ACI a front container checks the key before a request reaches the scoring container. Here the
same checks run in the gunicorn worker, in front of the inference server's Flask app, and only
the front's socket (127.0.0.1 by default) is bound. A request without a valid key never reaches
the entry script. ``Front.handle_front`` makes every decision that the front responds to by itself and
returns a ``FrontResponse`` value, so those decisions are testable without a socket.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Callable, Iterable

from local_scoring.entry import ERROR_CLASS_HEADER, ROWS_HEADER
from local_scoring.keys import KeyFile, key_matches

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/swagger.json"})
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # client_max_body_size 100m in Azure's nginx
INTERNAL_HEADERS = frozenset({ROWS_HEADER, ERROR_CLASS_HEADER})
CORS_ALLOWED_METHODS = "GET, POST, OPTIONS"
CORS_DEFAULT_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE_S = 600
# Host header values the swagger rewrite copies into the document: a name or address and a port.
_HOST_PATTERN = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_READ_CHUNK_BYTES = 1024 * 1024
# The start of the inference server's (1.5.1) response body when run() overruns SCORING_TIMEOUT_MS.
SCORING_TIMEOUT_PREFIX = b'{"message": "Scoring timeout after '


@dataclass(frozen=True)
class FrontConfig:
    """Settings of the front, read from the environment the service is started with.

    ``cors_origins`` is empty (CORS off), a tuple of origins such as ``http://127.0.0.1:8000``,
    or ``("*",)``. ``rewrite_swagger_host`` makes /swagger.json name the address the client used.
    ``worker_timeout_s`` is gunicorn's ``--timeout`` (WORKER_TIMEOUT), named in the response to a
    request that overran it; None when unknown.
    """

    keys_file: Path | None
    request_log: Path | None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ()
    rewrite_swagger_host: bool = True
    worker_timeout_s: int | None = None

    @classmethod
    def from_env(cls) -> "FrontConfig":
        keys_file = os.environ.get("LAB_KEYS_FILE")
        request_log = os.environ.get("LAB_REQUEST_LOG")
        origins = os.environ.get("AML_CORS_ORIGINS", "")
        worker_timeout = os.environ.get("WORKER_TIMEOUT", "").strip()
        return cls(
            keys_file=Path(keys_file) if keys_file else None,
            request_log=Path(request_log) if request_log else None,
            max_body_bytes=int(os.environ.get("LAB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            cors_origins=tuple(origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()),
            rewrite_swagger_host=os.environ.get("LAB_SWAGGER_REWRITE_HOST", "1") != "0",
            worker_timeout_s=int(worker_timeout) if worker_timeout.isdigit() else None,
        )


@dataclass
class FrontResponse:
    """A response the front sends itself, without calling the inference server."""

    status: str
    body: dict | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    error_class: str | None = None

    @property
    def status_code(self) -> int:
        return int(self.status.split()[0])

    def __call__(self, start_response: Callable) -> Iterable[bytes]:
        if self.body is None:
            payload = b""
            headers = [("Content-Length", "0"), *self.headers]
        else:
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
        if config.cors_origins:
            logger.info("CORS allowed for origins %s", ", ".join(config.cors_origins))

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        # The inference server takes its request id from x-request-id and returns it in the
        # response, so setting it here gives the log record and the response the same id. An id
        # that the server would reject (over 100 characters) is replaced.
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not request_id or len(request_id) > 100:
            request_id = str(uuid.uuid4())
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
        cors_headers = self._cors_headers(environ)
        try:
            rejection = self.handle_front(environ)
        except Exception as exc:
            # Reading the body failed, e.g. because the client closed the connection mid-body. No
            # response goes out, so the record takes nginx's 499 (client closed request).
            logger.warning("request %s: reading the request failed: %s", request_id, exc.__class__.__name__)
            record["status"] = 499
            record["error_class"] = f"RequestReadError:{exc.__class__.__name__}"
            self._log(record, started)
            raise
        if rejection is not None:
            record["payload_bytes"] = _content_length(environ)
            record["status"] = rejection.status_code
            record["error_class"] = rejection.error_class
            rejection.headers.extend([("x-request-id", request_id), *cors_headers])
            self._log(record, started)
            return rejection(start_response)
        record["payload_bytes"] = _content_length(environ)
        rewrite = self._swagger_rewrite(environ)
        # The app's start_response call is held back until its body has been read, so that the
        # log record is written before the first byte of the response goes out.
        pending: list[tuple] = []
        written: list[bytes] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info=None):
            record["status"] = int(status.split()[0])
            kept = []
            for name, value in headers:
                lowered = name.lower()
                if lowered == ROWS_HEADER:
                    record["rows"] = int(value)
                elif lowered == ERROR_CLASS_HEADER:
                    record["error_class"] = value
                elif lowered.startswith("access-control-") or (rewrite is not None and lowered == "content-length"):
                    continue  # the front sets CORS headers itself, and a rewritten swagger gets a new length
                else:
                    kept.append((name, value))
            if record["status"] >= 400 and record["error_class"] is None:
                record["error_class"] = _status_class(record["status"])
            kept.extend(cors_headers)
            pending[:] = [(status, kept, exc_info)]
            return written.append

        try:
            body = self.app(environ, capture)
            # The inference server's Flask responses are built in memory, so reading the whole
            # body here adds only one copy of it.
            payload = b"".join(written) + _read_and_close(body)
            if not pending:
                raise RuntimeError("the app returned a body without calling start_response")
        except SystemExit as exc:
            # gunicorn raises SystemExit in a worker that it ends (see _worker_exit_response). The
            # front responds instead of re-raising, and the worker exits after this request.
            failure = self._worker_exit_response(exc, request_id, record)
            failure.headers.extend([("x-request-id", request_id), *cors_headers])
            self._log(record, started)
            return failure(start_response)
        except Exception:  # noqa: BLE001 - every request gets an answer and a log record
            logger.exception("request %s: the inference server raised", request_id)
            record["status"] = 500
            record["error_class"] = "FrontError"
            self._log(record, started)
            failure = FrontResponse(
                "500 Internal Server Error",
                {"message": f"An unexpected error occurred in the service. The service log has the details under "
                            f"request id {request_id}.", "request_id": request_id},
                [("x-request-id", request_id), *cors_headers],
            )
            return failure(start_response)
        status, headers, exc_info = pending[0]
        if record["status"] == 500 and payload.startswith(SCORING_TIMEOUT_PREFIX):
            record["error_class"] = "ScoringTimeout"
        if rewrite is not None:
            payload = rewrite(payload)
            headers = [*headers, ("Content-Length", str(len(payload)))]
        self._log(record, started)
        start_response(status, headers, exc_info)
        return [payload]

    def _worker_exit_response(self, exc: SystemExit, request_id: str, record: dict) -> FrontResponse:
        """Build the response to a request that gunicorn interrupted by raising ``SystemExit`` in its worker.

        gunicorn 26.2 raises ``SystemExit(1)`` from its SIGABRT handler, which the arbiter sends to
        a worker that overran WORKER_TIMEOUT. It raises ``SystemExit(0)`` from its SIGQUIT and
        SIGINT handlers, which stop the service at once. A graceful stop (SIGTERM) raises nothing
        and lets the request finish. These three handlers set the worker's ``alive`` flag to False
        before raising, so the worker sends this response, leaves its request loop and exits. The
        arbiter starts a new worker in its place unless the whole service is stopping.

        The arbiter kills a timed-out worker with SIGKILL within about a second after SIGABRT,
        which leaves ample time for this in-memory response. A worker whose scoring thread still
        runs cannot finish exiting, so it gets that SIGKILL, and gunicorn logs "was sent SIGKILL!
        Perhaps out of memory?" although memory is not the cause.
        """
        # NOTE: an entry script that calls sys.exit() also lands here, as a 503 (or a 500 for
        # exit code 1), but then the worker keeps running, because only gunicorn clears ``alive``.
        if exc.code == 1:
            limit = self.config.worker_timeout_s
            described = f"the worker timeout of {limit} s" if limit is not None else "the worker timeout"
            logger.error("request %s: ran over %s (WORKER_TIMEOUT); gunicorn ends this worker", request_id, described)
            record["status"] = 500
            record["error_class"] = "WorkerTimeout"
            message = (f"Request {request_id} ran over {described} (WORKER_TIMEOUT), so gunicorn ended its worker. "
                       "Raise the limit with `lab deploy --worker-timeout SECONDS`, or send fewer records per request.")
            return FrontResponse("500 Internal Server Error", {"message": message, "request_id": request_id})
        logger.warning("request %s: interrupted because the worker is shutting down (SystemExit %r)",
                       request_id, exc.code)
        record["status"] = 503
        record["error_class"] = "WorkerShutdown"
        message = (f"Request {request_id} was interrupted because the service is shutting down. "
                   "Retry the request once the service runs again.")
        return FrontResponse("503 Service Unavailable", {"message": message, "request_id": request_id})

    def handle_front(self, environ: dict) -> FrontResponse | None:
        """Return the front's own response (413, 401, 400, CORS preflight), or None to pass the request on.

        A chunked body without Content-Length is read here, up to the limit, and handed on as a
        sized body, so the limit holds for it too.
        """
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        declared = _content_length(environ)
        if declared > self.config.max_body_bytes:
            return self._too_large(declared)
        if method == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            return self._preflight(environ)
        if path not in OPEN_PATHS and method != "OPTIONS" and self.keys is not None:
            rejection = self._check_key(environ)
            if rejection is not None:
                return rejection
        if method in ("POST", "PUT", "PATCH"):
            body = self._read_body(environ)
            if body is None:
                return self._too_large(None)
            if _is_json(environ):
                return _check_encoding(body)
        return None

    def _read_body(self, environ: dict) -> bytes | None:
        """Read the request body up to the limit and hand it on as a sized body (None when over the limit).

        A chunked body has no Content-Length, so only reading it here enforces the limit.
        """
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = _read_limited(environ["wsgi.input"], self.config.max_body_bytes)
            if body is None:
                return None
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        else:
            body = environ["wsgi.input"].read(_content_length(environ))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    def _too_large(self, size: int | None) -> FrontResponse:
        described = f"of {size} bytes" if size is not None else "(chunked)"
        return FrontResponse(
            "413 Request Entity Too Large",
            {"message": f"request body {described} is over the limit of {self.config.max_body_bytes} bytes; "
                        "send fewer records per request"},
            [("Connection", "close")],
            error_class="PayloadTooLarge",
        )

    def _check_key(self, environ: dict) -> FrontResponse | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if not header:
            reason = "missing Authorization header; send 'Authorization: Bearer <key>'"
        elif scheme.lower() != "bearer" or not token.strip():
            reason = "Authorization header must have the form 'Bearer <key>'"
        elif not key_matches(token.strip(), self.keys.digests()):
            reason = "invalid key; use the service's primary or secondary key (`lab keys show`)"
        else:
            return None
        return FrontResponse("401 Unauthorized", {"message": reason},
                             [("WWW-Authenticate", 'Bearer realm="score"')], error_class="Unauthorized")

    def _preflight(self, environ: dict) -> FrontResponse:
        origin = environ.get("HTTP_ORIGIN", "")
        if not self._origin_allowed(origin):
            hint = ("CORS is off for this service; deploy it with --cors-origins" if not self.config.cors_origins
                    else "add it to --cors-origins")
            return FrontResponse("403 Forbidden", {"message": f"origin {origin or '(none)'} is not allowed; {hint}"},
                                 error_class="CorsOriginRejected")
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "").strip()
        return FrontResponse("204 No Content", None, [
            ("Access-Control-Allow-Methods", CORS_ALLOWED_METHODS),
            ("Access-Control-Allow-Headers", requested or CORS_DEFAULT_HEADERS),
            ("Access-Control-Max-Age", str(CORS_MAX_AGE_S)),
        ])

    def _origin_allowed(self, origin: str) -> bool:
        origins = self.config.cors_origins
        return bool(origin) and ("*" in origins or origin.rstrip("/") in origins)

    def _cors_headers(self, environ: dict) -> list[tuple[str, str]]:
        origin = environ.get("HTTP_ORIGIN", "")
        if not self._origin_allowed(origin):
            return []
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Vary", "Origin"),
            ("Access-Control-Expose-Headers", "x-request-id, x-ms-request-id, WWW-Authenticate"),
        ]

    def _swagger_rewrite(self, environ: dict) -> Callable[[bytes], bytes] | None:
        """Return a body filter that sets the swagger's host to the address the client used, or None."""
        if not self.config.rewrite_swagger_host or environ.get("PATH_INFO") != "/swagger.json":
            return None
        host = environ.get("HTTP_HOST", "")
        if not _HOST_PATTERN.match(host):
            return None
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http"))
        scheme = scheme if scheme in ("http", "https") else "http"

        def rewrite(raw: bytes) -> bytes:
            try:
                document = json.loads(raw)
            except ValueError:
                return raw
            if isinstance(document, dict) and "swagger" in document:
                document["host"] = host
                document["schemes"] = [scheme]
            elif isinstance(document, dict) and "openapi" in document:
                document["servers"] = [{"url": f"{scheme}://{host}"}]
            else:
                return raw
            return json.dumps(document).encode("utf-8")

        return rewrite

    def _log(self, record: dict, started: float) -> None:
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if self.log_path is None:
            return
        line = json.dumps(record) + "\n"
        # One write of one line on an O_APPEND descriptor, so lines of several workers never mix.
        try:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            logger.error("request %s: cannot write the request log %s: %s", record["request_id"], self.log_path, exc)


def _read_and_close(body: Iterable[bytes]) -> bytes:
    """Join a WSGI response body and close it, as PEP 3333 requires of the server."""
    try:
        return b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()


def _read_limited(stream, limit: int) -> bytes | None:
    """Read ``stream`` to its end; return None as soon as it is longer than ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(_READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _is_json(environ: dict) -> bool:
    """Return whether the Content-Type is one the inference server parses as JSON, as Flask decides."""
    mimetype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _check_encoding(body: bytes) -> FrontResponse | None:
    """Return a 400 for a body that is not text in a JSON encoding (UTF-8, -16 or -32).

    The inference server (1.5.1) responds to such a body with a 500, because its JSON parsing
    catches only the JSON error and not the UnicodeDecodeError raised before it.
    """
    if not body:
        return None
    try:
        body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError as exc:
        message = (f"POST body could not be decoded as JSON: byte 0x{body[exc.start]:02x} at position {exc.start} "
                   f"is not valid {exc.encoding.upper()}; send the JSON encoded as UTF-8")
        return FrontResponse("400 Bad Request", {"message": message}, error_class="BadEncoding")
    return None


def _status_class(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return f"HTTP{status}"


def _content_length(environ: dict) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
