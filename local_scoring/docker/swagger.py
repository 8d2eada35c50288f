"""Serve swagger-ui for a scoring service's swagger.json, from the ``swagger-ui-bundle`` package.

This is the swagger service of docker-compose.yml. It serves the static swagger-ui files and a
``swagger-initializer.js`` that points the page at ``--swagger-url``. The browser then fetches
that document and sends "Try it out" requests to the scoring service itself, so the service
must allow this page's origin (``AML_CORS_ORIGINS``).

Usage: python -m local_scoring.docker.swagger --swagger-url URL [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

INITIALIZER = "/swagger-initializer.js"


def initializer_script(swagger_url: str) -> bytes:
    return (
        "window.onload = function () {\n"
        "  window.ui = SwaggerUIBundle({\n"
        f"    url: {json.dumps(swagger_url)},\n"
        "    dom_id: '#swagger-ui',\n"
        "    deepLinking: true,\n"
        "    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
        "    layout: 'StandaloneLayout'\n"
        "  });\n"
        "};\n"
    ).encode("utf-8")


class SwaggerUIHandler(SimpleHTTPRequestHandler):
    """Static swagger-ui files, with the initializer generated for one swagger URL."""

    def __init__(self, *args, swagger_url: str, **kwargs):
        self.swagger_url = swagger_url
        super().__init__(*args, **kwargs)

    def do_GET(self):
        if self.path.split("?", 1)[0] == INITIALIZER:
            body = initializer_script(self.swagger_url)
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - the signature is http.server's
        logger.info("%s %s", self.address_string(), format % args)


def make_server(swagger_url: str, host: str, port: int) -> ThreadingHTTPServer:
    from swagger_ui_bundle import swagger_ui_path

    handler = functools.partial(SwaggerUIHandler, swagger_url=swagger_url, directory=str(swagger_ui_path))
    return ThreadingHTTPServer((host, port), handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swagger-url", default=os.environ.get("LAB_SWAGGER_URL", "http://127.0.0.1:5001/swagger.json"),
                        help="URL of swagger.json as the browser reaches it (env LAB_SWAGGER_URL).")
    parser.add_argument("--host", default="0.0.0.0", help="Address to bind (default 0.0.0.0, for a container).")
    parser.add_argument("--port", type=int, default=8080, help="Port to bind (default 8080).")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(arguments.swagger_url, arguments.host, arguments.port)
    # As a container's first process, Python would ignore SIGTERM, and `docker stop` would wait.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    logger.info("swagger-ui for %s on %s:%d", arguments.swagger_url, arguments.host, arguments.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
