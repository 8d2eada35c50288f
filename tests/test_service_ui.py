"""swagger-ui in headless Chromium, and Schemathesis against the service's own OpenAPI document.

Both need test tools outside the base install: ``playwright`` (driving Debian's ``chromium``
binary, so no browser is downloaded) and ``schemathesis``. Each test is skipped with the reason
when its tool is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

from local_scoring.keys import read_keys
from local_scoring.process import ServiceSpec, free_port, start, stop

TIMEOUT_S = 60
UI_TIMEOUT_MS = 60_000
SCHEMATHESIS_MAX_EXAMPLES = 25
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def ui_service(small_model_dir, tmp_path_factory):
    """A v1 service that allows the origin of a swagger-ui server on a port chosen here."""
    ui_port = free_port("127.0.0.1")
    origin = f"http://127.0.0.1:{ui_port}"
    root = tmp_path_factory.mktemp("ui")
    state = start(root, ServiceSpec(name="ui", model_dir=small_model_dir, port=0, cors_origins=origin))
    yield {"state": state, "keys": read_keys(Path(state["keys_file"])), "ui_port": ui_port, "origin": origin}
    stop(root, "ui")


def chromium_binary() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium binary found; install Debian's `chromium` package to run the swagger-ui test")


def test_swagger_ui_try_it_out_scores(ui_service):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    pytest.importorskip("swagger_ui_bundle", reason="swagger-ui-bundle is not installed")
    from local_scoring.swagger_ui import SwaggerUIServer, cors_allows

    executable = chromium_binary()
    server = SwaggerUIServer(ui_service["state"]["swagger_uri"], port=ui_service["ui_port"]).start()
    try:
        assert cors_allows(ui_service["state"]["scoring_uri"], server.origin)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.set_default_timeout(UI_TIMEOUT_MS)
                page.goto(server.url)
                page.wait_for_selector(".opblock-post")
                paths = page.locator(".opblock-summary-path").all_inner_texts()
                page.click("button.authorize")
                page.fill(".auth-container input[type=text]", f"Bearer {ui_service['keys']['primaryKey']}")
                page.click(".auth-btn-wrapper button.authorize")
                page.click("button.btn-done")
                page.click(".opblock-post .opblock-summary")
                page.click(".opblock-post button.try-out__btn")
                page.click(".opblock-post button.execute")
                status = page.locator(".live-responses-table tr.response .response-col_status").first
                status.wait_for()
                status_text = status.inner_text().strip()
                body_text = page.locator(".live-responses-table tr.response .response-col_description pre").first.inner_text()
            finally:
                browser.close()
    finally:
        server.stop()
    sample = json.loads((Path(ui_service["state"]["model_dir"]) / "sample.json").read_text())["data"]
    assert "/score" in paths
    assert status_text == "200"
    assert len(json.loads(body_text)["result"]) == len(sample)


def test_swagger_ui_page_needs_no_network(ui_service):
    pytest.importorskip("swagger_ui_bundle", reason="swagger-ui-bundle is not installed")
    from local_scoring.swagger_ui import SwaggerUIServer

    server = SwaggerUIServer(ui_service["state"]["swagger_uri"], port=0).start()
    try:
        index = requests.get(server.url, timeout=TIMEOUT_S)
        script = requests.get(server.url + "swagger-ui-bundle.js", timeout=TIMEOUT_S)
        document = requests.get(server.url + "swagger.json", timeout=TIMEOUT_S)
    finally:
        server.stop()
    assert index.status_code == 200
    assert "http" not in index.text.split("<body>")[1].split("SwaggerUIBundle(")[0]
    assert script.status_code == 200
    assert document.json()["host"] == ui_service["state"]["scoring_uri"].split("/")[2]


def test_schemathesis_finds_no_5xx(ui_service):
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (test extra)")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    schema = schemathesis.openapi.from_url(ui_service["state"]["swagger_uri"] + "?version=3")
    headers = {"Authorization": f"Bearer {ui_service['keys']['primaryKey']}"}
    failures: list[str] = []
    statuses: set[tuple[str, int]] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=SCHEMATHESIS_MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def exercise(data):
                case = data.draw(strategy)
                response = case.call(headers=headers, timeout=TIMEOUT_S)
                statuses.add((f"{operation.method.upper()} {operation.path}", response.status_code))
                if response.status_code >= 500:
                    failures.append(f"{operation.method} {operation.path}: {response.status_code} {response.text[:200]}")
                elif response.status_code >= 400:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    if not (isinstance(body, dict) and isinstance(body.get("message"), str)):
                        failures.append(f"{operation.method} {operation.path}: {response.status_code} without a "
                                        f"JSON message: {response.text[:200]}")

            exercise()
    assert failures == []
    assert ("POST /score", 200) in statuses
    assert any(path == "POST /score" and 400 <= status < 500 for path, status in statuses)
