"""The local pipeline endpoint over HTTP: ``PipelineApi`` behind a threading HTTP server.

It binds 127.0.0.1 by default. One thread serves each connection, and the dispatcher thread
starts runs, so a slow client never holds up a run. The server's address is written to
``pipelines/server.json`` while it runs, for `lab pipeline publish` to print the endpoint URL.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lab.pipelines.api import MAX_BODY_BYTES, PipelineApi, Request, Response, error_response
from lab.pipelines.definition import pipelines_dir
from lab.pipelines.dispatcher import DEFAULT_MAX_CONCURRENT_RUNS, DEFAULT_POLL_SECONDS, Dispatcher
from lab.workspace import Workspace, atomic_write_json, read_json, utc_now

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790
SERVER_FILE = "server.json"
_LOOPBACK_FOR_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1"}
READ_TIMEOUT_SECONDS = 30


class _Handler(BaseHTTPRequestHandler):
    server_version = "lab-pipelines"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS

    def _dispatch(self) -> None:
        started = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        api: PipelineApi = self.server.api  # type: ignore[attr-defined]
        if length < 0:
            response = error_response(400, "invalid Content-Length header; send the body's size in bytes")
            self.close_connection = True
        elif length > MAX_BODY_BYTES:
            # The body is not read, so the connection cannot carry another request.
            response = error_response(413, f"request body has {length} bytes; the limit is {MAX_BODY_BYTES}")
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            response = api.handle(Request(self.command, self.path, dict(self.headers), body))
        self._send(response)
        # One access record per request; the path has ids but never a token.
        logger.info("%s %s %d %.1f ms", self.command, self.path[:200], response.status,
                    (time.monotonic() - started) * 1000)

    def _send(self, response: Response) -> None:
        payload = response.encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def log_message(self, format: str, *args) -> None:
        # The access record is written in _dispatch; http.server's own lines go to debug.
        logger.debug("%s " + format, self.address_string(), *args)


class PipelineServer:
    """The endpoint: an HTTP server and a dispatcher for one workspace.

    ``start()`` runs it in a background thread (tests, notebooks); ``serve_forever()`` blocks.
    ``port=0`` picks a free port; ``url`` has the real one.
    """

    def __init__(
        self,
        workspace: Workspace,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ):
        self.workspace = workspace
        self.dispatcher = Dispatcher(workspace, max_concurrent_runs, poll_seconds)
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.api = PipelineApi(workspace, self.dispatcher)  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL for clients on this machine; a wildcard bind address becomes loopback."""
        host, port = self.httpd.server_address[:2]
        host = _LOOPBACK_FOR_WILDCARD.get(host, host)
        host_text = f"[{host}]" if ":" in str(host) else host
        return f"http://{host_text}:{port}"

    def start(self) -> PipelineServer:
        self._begin()
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="pipeline-endpoint", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._begin()
        try:
            self.httpd.serve_forever()
        finally:
            self._end()

    def stop(self) -> None:
        """Stop serving and polling; runs in progress go on in their runner processes."""
        self.httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._end()

    def _begin(self) -> None:
        self.dispatcher.start()
        atomic_write_json(
            pipelines_dir(self.workspace) / SERVER_FILE,
            {"url": self.url, "pid": os.getpid(), "started_at": utc_now()},
        )
        bound = self.httpd.server_address[0]
        logger.info("pipeline endpoint listening on %s (bound to %s) for workspace %s", self.url, bound,
                    self.workspace.root)
        if not _is_loopback(bound):
            logger.warning("the endpoint is bound to %s and reachable from other machines over plain HTTP, "
                           "which sends bearer tokens unencrypted; bind 127.0.0.1 unless a TLS proxy is in front",
                           bound)

    def _end(self) -> None:
        self.httpd.server_close()
        self.dispatcher.stop()
        path = pipelines_dir(self.workspace) / SERVER_FILE
        try:
            if read_json(path).get("pid") == os.getpid():
                path.unlink()
        except (FileNotFoundError, ValueError):
            pass
        logger.info("pipeline endpoint on %s stopped", self.url)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def running_server_url(workspace: Workspace) -> str | None:
    """Return the URL of the endpoint serving this workspace, if its process is still alive."""
    try:
        state = read_json(pipelines_dir(workspace) / SERVER_FILE)
        os.kill(int(state["pid"]), 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError):
        return None
    except PermissionError:
        pass
    return state.get("url")
