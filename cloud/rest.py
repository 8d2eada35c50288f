"""Trigger a published pipeline over REST, the way Azure ML's PipelineSubmit endpoint expects.

No ``azureml`` import here, so the local pipeline client can reuse the same request builder and
sender against the local REST endpoint.

Request: ``POST <endpoint>`` with ``Authorization: Bearer <AAD token>`` and the JSON body
``{"ExperimentName": ..., "ParameterAssignments": {...}}``. The response is a JSON document whose
``Id`` is the new pipeline run's id.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from cloud.errors import (
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY_S,
    TRANSIENT_STATUS,
    CloudError,
    cause_of,
    mask_secret,
    with_retry,
)
from cloud.settings import check_experiment_name
from lab.pipelines.client import is_loopback

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "pipeline-rest-endpoint"
TIMEOUT_S = 60


@dataclass(frozen=True)
class TriggerRequest:
    """The pieces of one pipeline trigger: URL, headers and JSON body."""

    url: str
    headers: dict[str, str] = field(repr=False)
    body: dict[str, Any]

    def describe(self) -> str:
        """Return the request as one line with the bearer token masked."""
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        return f"POST {self.url} (Authorization: Bearer {mask_secret(token)}) body {json.dumps(self.body)}"


class TransientHTTPError(Exception):
    """A 408, 429 or 5xx response, retried by ``with_retry``."""

    def __init__(self, status_code: int, text: str):
        super().__init__(f"HTTP {status_code}: {text}")
        self.status_code = status_code


def build_trigger_request(
    endpoint: str,
    auth_header: Mapping[str, str] | str,
    experiment_name: str = DEFAULT_EXPERIMENT,
    parameter_assignments: Mapping[str, Any] | None = None,
) -> TriggerRequest:
    """Build the request that starts one run of a published pipeline.

    ``auth_header`` is either the header dict an SDK authentication object returns from
    ``get_authentication_header()`` or a bare AAD token. Raises ``CloudError`` for an endpoint
    that is not an http(s) URL, plain http to a host that is not loopback (the token would travel
    in clear text), a missing token or an invalid experiment name.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CloudError(
            f"invalid pipeline endpoint {endpoint!r}; pass the REST endpoint of a published pipeline "
            "(`lab cloud pipeline publish` prints it)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise CloudError(
            f"refusing to send a bearer token over plain http to {parts.hostname}; use the https endpoint, "
            "or a loopback address for the local pipeline endpoint"
        )
    if isinstance(auth_header, str):
        token = auth_header.removeprefix("Bearer ").strip()
        authorization = f"Bearer {token}" if token else ""
    else:
        authorization = auth_header.get("Authorization") or auth_header.get("authorization") or ""
    if not authorization.removeprefix("Bearer ").strip():
        raise CloudError("no bearer token for the pipeline endpoint; sign in with --auth and retry")
    check_experiment_name(experiment_name)
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    body = {"ExperimentName": experiment_name, "ParameterAssignments": dict(parameter_assignments or {})}
    return TriggerRequest(url=endpoint, headers=headers, body=body)


def post_trigger_request(
    request: TriggerRequest,
    session=None,
    attempts: int = RETRY_ATTEMPTS,
    base_delay_s: float = RETRY_BASE_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send ``request`` and return the run id from the response's ``Id``.

    Retries 408, 429 and 5xx responses and connection failures with backoff. Raises ``CloudError``
    for any other error status, a response that is not JSON, or one without ``Id``.
    """
    import requests

    http = session or requests.Session()

    def send():
        response = http.post(request.url, headers=request.headers, json=request.body, timeout=TIMEOUT_S)
        if response.status_code in TRANSIENT_STATUS:
            raise TransientHTTPError(response.status_code, response.text[:200])
        return response

    logger.info("triggering pipeline: %s", request.describe())
    try:
        response = with_retry(send, f"POST {request.url}", attempts=attempts, base_delay_s=base_delay_s, sleep=sleep)
    except (TransientHTTPError, requests.RequestException) as exc:
        status = f"HTTP {exc.status_code}: " if isinstance(exc, TransientHTTPError) else ""
        raise CloudError(
            f"trigger of pipeline endpoint {request.url} failed: {status}{cause_of(exc)}; retry later, or check "
            "the endpoint with `lab cloud pipeline status`"
        ) from None
    if response.status_code == 401:
        raise CloudError(
            f"pipeline endpoint {request.url} rejected the bearer token (HTTP 401); sign in again and retry"
        )
    if response.status_code == 403:
        raise CloudError(
            f"pipeline endpoint {request.url} denied access (HTTP 403); the identity needs the AzureML "
            "Data Scientist or Contributor role on the workspace"
        )
    if response.status_code >= 400:
        raise CloudError(
            f"pipeline endpoint {request.url} returned HTTP {response.status_code}: "
            f"{cause_of(Exception(response.text))}; check the parameter names and the pipeline id"
        )
    try:
        answer = response.json()
    except ValueError:
        raise CloudError(
            f"pipeline endpoint {request.url} returned a body that is not JSON; check that the URL is "
            "the published pipeline's REST endpoint"
        ) from None
    run_id = answer.get("Id") if isinstance(answer, dict) else None
    if not run_id:
        raise CloudError(f"pipeline endpoint {request.url} returned no Id; check the endpoint URL")
    logger.info("pipeline run %s submitted to experiment %s", run_id, request.body["ExperimentName"])
    return str(run_id)
