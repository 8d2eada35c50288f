"""Trigger a published pipeline over REST and follow its run, locally or in Azure.

The request is the one Azure documents for a published pipeline: ``POST <endpoint>`` with
``Authorization: Bearer <token>`` and ``{"ExperimentName": ..., "ParameterAssignments": {...}}``;
the response carries the run id in ``Id``. For Azure the token is an Azure AD token for the
workspace; for the local endpoint it is the one from `lab auth token`. This module needs only
``requests``, never the Azure SDK.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import time
from typing import Any
from urllib.parse import urlsplit

import requests

from lab.pipelines.errors import TriggerError

logger = logging.getLogger(__name__)

SUBMIT_MARKERS = ("/PipelineRuns/PipelineSubmit/", "/PipelineRuns/PipelineEndpointSubmit/")
TERMINAL_STATUSES = ("Completed", "Failed", "Canceled")
DEFAULT_TIMEOUT_SECONDS = 30.0
# The local endpoint's rule for experiment names. The Experiment docstring of azureml-core 1.61 allows
# 3 to 36 of the same characters, so this looser rule rejects no name that Azure documents as valid.
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
EXPERIMENT_NAME_RULE = '1 to 255 letters, digits, "_" and "-", starting with a letter or digit'


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``name=value`` from ``--param``; the value is read as JSON when it parses (20, 0.5, true).

    Raises ``TriggerError`` when there is no ``=`` or no name.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise TriggerError(f"invalid --param {text!r}; use NAME=VALUE, for example timeout_minutes=20")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if isinstance(value, (dict, list)) or value is None:
        value = raw
    return name.strip(), value


def check_endpoint(endpoint: str) -> None:
    """Raise ``TriggerError`` unless ``endpoint`` is an http(s) URL of a pipeline submit route.

    A bearer token is never sent in clear text to another machine: plain ``http`` is accepted for
    loopback addresses only.
    """
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TriggerError(f"invalid endpoint {endpoint[:200]!r}; pass the full http(s) URL that publish printed")
    if not any(marker.lower() in parts.path.lower() for marker in SUBMIT_MARKERS):
        raise TriggerError(
            f"endpoint {endpoint[:200]!r} is not a pipeline submit URL; it must contain "
            "/PipelineRuns/PipelineSubmit/<id> (a published pipeline's endpoint)"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise TriggerError(
            f"refusing to send a bearer token over plain http to {parts.hostname}; use https, "
            "or a loopback address for the local endpoint"
        )


def check_experiment_name(name: str) -> None:
    """Raise ``TriggerError`` unless ``name`` is a valid experiment name."""
    if not EXPERIMENT_NAME.match(name):
        raise TriggerError(f"invalid experiment name {name[:60]!r}; use {EXPERIMENT_NAME_RULE}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_submit_request(
    endpoint: str,
    token: str,
    experiment_name: str,
    parameters: dict[str, Any] | None = None,
) -> requests.PreparedRequest:
    """Build the submit request without sending it.

    Raises ``TriggerError`` for an invalid endpoint or experiment name, and without a token.
    """
    check_endpoint(endpoint)
    check_experiment_name(experiment_name)
    if not token:
        raise TriggerError("no token; pass --token, set LAB_PIPELINE_TOKEN, or run `lab auth token` for the local endpoint")
    body = {"ExperimentName": experiment_name, "ParameterAssignments": dict(parameters or {})}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return requests.Request("POST", endpoint, headers=headers, json=body).prepare()


def submit(
    endpoint: str,
    token: str,
    experiment_name: str,
    parameters: dict[str, Any] | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    session: requests.Session | None = None,
) -> dict:
    """Trigger the pipeline and return the endpoint's JSON response, which has the run id in ``Id``.

    Raises ``TriggerError`` with the endpoint's message on any status but 200, and when the
    endpoint cannot be reached.
    """
    prepared = build_submit_request(endpoint, token, experiment_name, parameters)
    answer = _send(prepared, timeout_seconds, session)
    if not isinstance(answer, dict) or not answer.get("Id"):
        raise TriggerError(f"{_host(endpoint)} responded without a run id (body {str(answer)[:200]!r})")
    logger.info("triggered run %s on %s", answer["Id"], _host(endpoint))
    return answer


def run_status_url(endpoint: str, experiment_name: str, run_id: str) -> str:
    """Return the run history URL of a run triggered through ``endpoint``.

    Azure serves run history under ``/history/v1.0`` with the same workspace path as
    ``/pipelines/v1.0``; the local endpoint mirrors that.
    NOTE: checked against the local endpoint only; Azure's history route is taken from its REST
    reference and was not called from here.
    """
    check_endpoint(endpoint)
    parts = urlsplit(endpoint)
    workspace_path = parts.path.split("/PipelineRuns/", 1)[0].replace("/pipelines/v1.0/", "/history/v1.0/", 1)
    return f"{parts.scheme}://{parts.netloc}{workspace_path}/experiments/{experiment_name}/runs/{run_id}"


def get_run_status(
    endpoint: str,
    token: str,
    experiment_name: str,
    run_id: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    session: requests.Session | None = None,
) -> dict:
    """Return the run's record from the run history route (``status`` is Azure's status name)."""
    url = run_status_url(endpoint, experiment_name, run_id)
    prepared = requests.Request("GET", url, headers={"Authorization": f"Bearer {token}"}).prepare()
    return _send(prepared, timeout_seconds, session)


def wait_for_run(
    endpoint: str,
    token: str,
    experiment_name: str,
    run_id: str,
    timeout_seconds: float | None = None,
    poll_seconds: float = 2.0,
    session: requests.Session | None = None,
) -> dict:
    """Poll the run's status until it ends and return its record.

    Raises ``WaitTimeout`` after ``timeout_seconds`` (the run goes on) and ``ValueError`` for a
    timeout that is not a positive number.
    """
    if timeout_seconds is not None and not timeout_seconds > 0:
        raise ValueError(f"timeout_seconds must be a positive number of seconds, got {timeout_seconds!r}")
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    while True:
        status = get_run_status(endpoint, token, experiment_name, run_id, session=session)
        if status.get("status") in TERMINAL_STATUSES:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(run_id, str(status.get("status")), timeout_seconds, endpoint, experiment_name)
        time.sleep(poll_seconds)


class WaitTimeout(TriggerError):
    """The error of ``wait_for_run`` when its timeout ends first. The run itself goes on."""

    def __init__(self, run_id: str, status: str, timeout_seconds: float, endpoint: str, experiment_name: str):
        self.run_id = run_id
        self.last_status = status
        if is_loopback(urlsplit(endpoint).hostname or ""):
            follow = f"`lab pipeline run-status {run_id} --wait` in the endpoint's workspace"
        else:
            follow = f"`lab cloud pipeline status --run-id {run_id} --experiment {experiment_name} --follow`"
        super().__init__(
            f"stopped waiting after {timeout_seconds:g} s: run {run_id} is still {display_status(status)} and goes "
            f"on; follow it with {follow}"
        )


# Azure's run status names and the lowercase names that the local run records and the CLI use.
LOCAL_STATUS = {"Queued": "queued", "Running": "running", "Completed": "completed", "Failed": "failed",
                "Canceled": "canceled"}


def display_status(status: str) -> str:
    """Return the CLI's name for an Azure run status; names without a local match are kept."""
    return LOCAL_STATUS.get(status, status)


def resolve_token(token: str | None, endpoint: str, workspace=None) -> str:
    """Return the token to send: ``token``, else ``$LAB_PIPELINE_TOKEN``, else for a loopback
    endpoint the workspace's own token. Raises ``TriggerError`` when there is none."""
    from lab.pipelines.auth import TOKEN_ENV, read_token

    if token:
        return token
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    host = urlsplit(endpoint).hostname or ""
    if workspace is not None and is_loopback(host):
        stored = read_token(workspace)
        if stored:
            return stored
    raise TriggerError(
        f"no token for {host or endpoint[:100]}; pass --token or set {TOKEN_ENV} (an Azure AD token for Azure, "
        "`lab auth token` for the local endpoint)"
    )


def _send(prepared: requests.PreparedRequest, timeout_seconds: float, session: requests.Session | None) -> Any:
    session = session or requests.Session()
    host = _host(prepared.url)
    try:
        response = session.send(prepared, timeout=timeout_seconds)
    except requests.Timeout:
        raise TriggerError(f"{host} did not respond within {timeout_seconds:g} s (timed out); check that the endpoint is up") from None
    except requests.ConnectionError as exc:
        raise TriggerError(
            f"cannot reach {host} ({exc.__class__.__name__}); check the URL, or start the local endpoint "
            "with `lab pipeline serve`"
        ) from None
    if response.status_code != 200:
        raise TriggerError(f"{host} responded {response.status_code}: {_error_message(response)}", response.status_code)
    try:
        return response.json()
    except ValueError:
        raise TriggerError(f"{host} responded 200 with a body that is not JSON: {response.text[:200]!r}") from None


def _error_message(response: requests.Response) -> str:
    """Return the message of an Azure-style ``{"error": {"message"}}`` or ``{"message"}`` body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason or "no body"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("message") or body.get("Message"):
            return str(body.get("message") or body.get("Message"))
    return json.dumps(body)[:300]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
