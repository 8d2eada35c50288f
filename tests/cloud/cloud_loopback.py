"""A scripted HTTP server on 127.0.0.1 that records the requests it receives."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: bytes


@dataclass
class ScriptedServer:
    """HTTP server that responds to request N with ``answers[N]``, repeating the last entry."""

    answers: list
    requests: list = field(default_factory=list)

    def __enter__(self) -> "ScriptedServer":
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                script.requests.append(RecordedRequest(self.command, self.path, dict(self.headers), body))
                index = min(len(script.requests), len(script.answers)) - 1
                status, answer = script.answers[index]
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
