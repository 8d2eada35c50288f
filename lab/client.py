"""A scoring client that sends what the exercise's endpoint.py sends, and decodes every answer form.

``EXERCISE_RECORDS`` are the two records of the exercise's starter script, with their keys in
alphabetical order as that script lists them (not in training order), so a service that matched
columns by position would answer them wrongly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from lab.errors import EndpointError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0

_EXERCISE_COMMON = {
    "campaign": 1,
    "cons.conf.idx": -46.2,
    "cons.price.idx": 92.893,
    "contact": "cellular",
    "day_of_week": "mon",
    "default": "no",
    "education": "university.degree",
    "emp.var.rate": -1.8,
    "euribor3m": 1.299,
    "housing": "yes",
    "job": "blue-collar",
    "loan": "yes",
    "marital": "married",
    "month": "may",
    "nr.employed": 5099.1,
    "pdays": 999,
    "poutcome": "failure",
    "previous": 1,
}
EXERCISE_RECORDS = [
    dict(sorted({**_EXERCISE_COMMON, "age": 17, "duration": 971}.items())),
    dict(sorted({**_EXERCISE_COMMON, "age": 87, "duration": 471}.items())),
]


@dataclass(frozen=True)
class ScoreResult:
    """A decoded scoring answer."""

    status: int
    predictions: list | None
    body: Any
    double_encoded: bool
    request_id: str | None
    elapsed_ms: float


def swagger_uri_for(scoring_uri: str) -> str:
    """Return the swagger URI of a scoring URI, as ACI forms it (``/score`` replaced by ``/swagger.json``)."""
    base, _, query = scoring_uri.partition("?")
    base = base.rstrip("/")
    if base.endswith("/score"):
        base = base[: -len("/score")]
    return f"{base}/swagger.json"


def payload_style_of(document: dict) -> str:
    """Return "v2" when a swagger document's input has ``Inputs`` (Swagger 2.0 or OpenAPI 3), else "v1"."""
    definitions = document.get("definitions") or document.get("components", {}).get("schemas", {})
    properties = definitions.get("ServiceInput", {}).get("properties", {})
    return "v2" if "Inputs" in properties and "data" not in properties else "v1"


def detect_payload_style(scoring_uri: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Read the service's swagger and return its payload style; "v1" when no swagger can be read."""
    uri = swagger_uri_for(scoring_uri)
    try:
        response = requests.get(uri, timeout=timeout_s)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        logger.info("no swagger at %s (%s); sending the v1 payload style", uri, exc.__class__.__name__)
        return "v1"
    style = payload_style_of(document) if isinstance(document, dict) else "v1"
    logger.info("swagger at %s describes the %s payload style", uri, style)
    return style


def build_payload(records: list[dict], style: str = "v1", method: str = "predict") -> dict:
    """Wrap records in the v1 (``{"data": ...}``) or v2 (``{"Inputs": ..., "GlobalParameters": ...}``) form."""
    if style == "v1":
        return {"data": records}
    if style == "v2":
        return {"Inputs": {"data": records}, "GlobalParameters": {"method": method}}
    raise ValueError(f"unknown payload style {style!r}; expected 'v1' or 'v2'")


def decode_body(text: str) -> tuple[Any, bool]:
    """Parse a scoring answer; a JSON string that contains JSON (v1 AutoML scripts) is decoded twice.

    Returns the parsed body and whether it was double-encoded.
    """
    body = json.loads(text)
    if isinstance(body, str):
        try:
            return json.loads(body), True
        except json.JSONDecodeError:
            return body, False
    return body, False


def extract_predictions(body: Any) -> list | None:
    if isinstance(body, dict):
        for key in ("result", "Results"):
            if key in body:
                return body[key]
    if isinstance(body, list):
        return body
    return None


def score_payload(uri: str, key: str | None, payload: dict | bytes, timeout_s: float = DEFAULT_TIMEOUT_S) -> ScoreResult:
    """POST ``payload`` to ``uri`` with ``Authorization: Bearer <key>`` and decode the answer.

    Raises ``EndpointError`` when the URI cannot be reached; HTTP errors come back as a result
    with their status and body, so the caller decides how to report them.
    """
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    try:
        response = requests.post(uri, data=data, headers=headers, timeout=timeout_s)
    except requests.RequestException as exc:
        raise EndpointError(
            f"cannot reach scoring URI {uri} ({exc.__class__.__name__}); check that the service runs "
            "(`lab deploy`) and the URI is right"
        ) from None
    try:
        body, double_encoded = decode_body(response.text)
    except json.JSONDecodeError:
        body, double_encoded = response.text, False
    return ScoreResult(
        status=response.status_code,
        predictions=extract_predictions(body) if response.ok else None,
        body=body,
        double_encoded=double_encoded,
        request_id=response.headers.get("x-request-id") or response.headers.get("x-ms-request-id"),
        elapsed_ms=response.elapsed.total_seconds() * 1000,
    )


def score_records(
    uri: str,
    key: str | None,
    records: list[dict] | None = None,
    style: str = "v1",
    body_path: Path | None = Path("data.json"),
    timeout_s: float = DEFAULT_TIMEOUT_S,
    method: str = "predict",
) -> ScoreResult:
    """Score ``records`` (default: the exercise's two) and write the request body to ``body_path``.

    The body is written only after a successful answer, so a failed call never leaves a body that
    `lab benchmark` would then post thousands of times.

    ``style`` is "v1", "v2" or "auto" (read from the service's swagger); ``method`` is the v2
    ``GlobalParameters.method``. Raises ``EndpointError`` naming the status and the service's
    message when the answer is not 200.
    """
    if style == "auto":
        style = detect_payload_style(uri, timeout_s)
    payload = build_payload(EXERCISE_RECORDS if records is None else records, style, method)
    body_bytes = json.dumps(payload).encode("utf-8")
    result = score_payload(uri, key, body_bytes, timeout_s)
    if result.status != 200:
        message = result.body.get("message") if isinstance(result.body, dict) else str(result.body)[:300]
        hint = " (pass --key or check `lab keys show`)" if result.status == 401 else ""
        raise EndpointError(f"{uri} returned HTTP {result.status}: {message}{hint}")
    if isinstance(result.body, dict) and "error" in result.body:
        # v1 AutoML scripts return errors inside an HTTP 200 body.
        raise EndpointError(f"{uri} returned HTTP 200 with an error in the body: {str(result.body['error'])[:300]}")
    if body_path is not None:
        from lab.workspace import atomic_write_bytes

        atomic_write_bytes(Path(body_path), body_bytes)
    return result
