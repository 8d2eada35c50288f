"""Serve swagger-ui for a scoring service's swagger document, from the swagger-ui-bundle package.

The page and its scripts come from the installed ``swagger-ui-bundle`` package, so nothing is
downloaded at run time. The UI server also serves ``/swagger.json`` by fetching the service's
document, so the page loads it from its own origin. "Try it out" calls go from the browser
straight to the service, which therefore has to allow the UI's origin by CORS
(``lab deploy --cors-origins``).
"""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from lab.errors import ServiceError

logger = logging.getLogger(__name__)

DEFAULT_UI_PORT = 8000
FETCH_TIMEOUT_S = 30

INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>{title}</title>
  <link rel="stylesheet" type="text/css" href="swagger-ui.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "swagger.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


def bundle_dir() -> Path:
    """Return the folder of swagger-ui's static files; raise ``ServiceError`` when the package is missing."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        raise ServiceError(
            "swagger-ui-bundle is not installed; install it with `pip install swagger-ui-bundle`"
        ) from None
    folder = Path(str(swagger_ui_path))
    if not (folder / "swagger-ui-bundle.js").is_file():
        raise ServiceError(f"swagger-ui files not found in {folder}; reinstall swagger-ui-bundle")
    return folder


class _Handler(SimpleHTTPRequestHandler):
    """Static files from the bundle, an index page for the service, and its swagger document."""

    swagger_uri: str = ""
    title: str = "swagger"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        parts = urlsplit(self.path)
        if parts.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", INDEX_HTML.format(title=self.title).encode("utf-8"))
        elif parts.path == "/swagger.json":
            self._send_swagger(parse_qs(parts.query).get("version", [None])[0])
        else:
            super().do_GET()

    def _send_swagger(self, version: str | None) -> None:
        try:
            response = requests.get(self.swagger_uri, params={"version": version} if version else None,
                                    timeout=FETCH_TIMEOUT_S)
        except requests.RequestException as exc:
            logger.error("cannot fetch %s: %s", self.swagger_uri, exc.__class__.__name__)
            body = {"message": f"cannot reach {self.swagger_uri} ({exc.__class__.__name__}); is the service running?"}
            self._send(HTTPStatus.BAD_GATEWAY, "application/json", json.dumps(body).encode("utf-8"))
            return
        self._send(HTTPStatus(response.status_code), "application/json", response.content)

    def _send(self, status: HTTPStatus, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - the signature http.server defines
        logger.debug("swagger-ui %s", format % args)


class SwaggerUIServer:
    """swagger-ui on ``http://host:port/`` for the document at ``swagger_uri``, served by a thread."""

    def __init__(self, swagger_uri: str, host: str = "127.0.0.1", port: int = DEFAULT_UI_PORT, title: str = "swagger"):
        handler = type("SwaggerUIHandler", (_Handler,), {"swagger_uri": swagger_uri, "title": title})
        try:
            self.httpd = ThreadingHTTPServer((host, port), partial(handler, directory=str(bundle_dir())))
        except OSError as exc:
            raise ServiceError(f"cannot serve swagger-ui on {host}:{port} ({exc.strerror}); pass another --ui-port") from None
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "SwaggerUIServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="swagger-ui", daemon=True)
        self._thread.start()
        logger.info("swagger-ui at %s", self.url)
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def cors_allows(scoring_uri: str, origin: str) -> bool:
    """Return whether the service allows a CORS preflight from ``origin`` for POST /score."""
    try:
        response = requests.options(scoring_uri, timeout=FETCH_TIMEOUT_S, headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        })
    except requests.RequestException:
        return False
    return response.ok and response.headers.get("Access-Control-Allow-Origin") in (origin, "*")
