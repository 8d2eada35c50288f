"""Request handling of the local pipeline endpoint, without sockets.

``PipelineApi.handle`` takes a ``Request`` and returns a ``Response`` (status, JSON body, headers),
so contract tests can call it directly; ``lab.pipelines.server`` puts it behind HTTP.

Routes, in Azure's URL shape (``{ws}`` is ``/subscriptions/local/resourceGroups/local/providers/
Microsoft.MachineLearningServices/workspaces/local``):

- ``POST /pipelines/v1.0{ws}/PipelineRuns/PipelineSubmit/<pipeline id>`` with
  ``{"ExperimentName": ..., "ParameterAssignments": {...}}`` queues a run: 200 ``{"Id": ...}``.
- ``GET /history/v1.0{ws}/experiments/<name>/runs/<run id>`` (or ``.../runs/<run id>``): the run.
- ``GET /``: health, without a token.

Every other route needs ``Authorization: Bearer <token>``. Errors come back as Azure's
``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from lab.pipelines.auth import bearer_token, read_token, token_matches
from lab.pipelines.client import EXPERIMENT_NAME, EXPERIMENT_NAME_RULE
from lab.pipelines.definition import get_pipeline
from lab.pipelines.dispatcher import Dispatcher
from lab.pipelines.errors import PipelineError, RequestError
from lab.pipelines.publish import API_PREFIX, HISTORY_PREFIX, PublishedNotFound, get_published
from lab.pipelines.runs import AZURE_STATUS, RunNotFound, create_run, get_run, redact_workspace_path
from lab.workspace import Workspace

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
BODY_FIELDS = ("ExperimentName", "ParameterAssignments", "Description")
# Fields of Azure's submission body that a local pipeline has no use for.
UNSUPPORTED_FIELDS = ("DataPathAssignments", "DataSetDefinitionValueAssignments", "AssetOutputSettingsAssignments")
_ID = r"(?P<{name}>[^/]+)"
SUBMIT_ROUTE = re.compile(re.escape(API_PREFIX) + r"/PipelineRuns/PipelineSubmit/" + _ID.format(name="pipeline_id") + "$",
                          re.IGNORECASE)
RUN_ROUTE = re.compile(
    re.escape(HISTORY_PREFIX) + r"(?:/experiments/" + _ID.format(name="experiment") + r")?/runs/"
    + _ID.format(name="run_id") + "$",
    re.IGNORECASE,
)
ERROR_CODES = {400: "UserError", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed",
               413: "PayloadTooLarge", 415: "UnsupportedMediaType", 500: "InternalServerError"}


@dataclass(frozen=True)
class Request:
    """An HTTP request; header names are matched case-insensitively."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return (json.dumps(self.body) + "\n").encode("utf-8")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": ERROR_CODES.get(status, "Error"), "message": message}}
    return Response(status, body, headers or {})


class PipelineApi:
    """Routes requests to published pipelines and runs of one workspace."""

    def __init__(self, workspace: Workspace, dispatcher: Dispatcher | None):
        self.workspace = workspace
        self.dispatcher = dispatcher

    def handle(self, request: Request) -> Response:
        """Return the response for ``request``; an unexpected exception becomes a logged 500."""
        try:
            return self._route(request)
        except RequestError as exc:
            # Messages show the workspace as <workspace>, so a remote client does not learn its path.
            return error_response(exc.status, redact_workspace_path(str(exc), self.workspace), exc.headers)
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            logger.exception("request %s: %s %s failed", request_id, request.method, request.path)
            return error_response(500, f"internal error; see the endpoint log for request id {request_id}")

    def _route(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path == "/":
            if request.method not in ("GET", "HEAD"):
                raise RequestError(405, f"{request.method} is not allowed on /; use GET", {"Allow": "GET"})
            return Response(200, {"status": "Healthy"})
        submit = SUBMIT_ROUTE.match(path)
        if submit:
            self._require_method(request, "POST")
            self._authenticate(request)
            return self._submit(submit["pipeline_id"], request)
        run = RUN_ROUTE.match(path)
        if run:
            self._require_method(request, "GET")
            self._authenticate(request)
            return self._run_status(run["run_id"], run["experiment"])
        raise RequestError(404, f"no route for {path[:200]!r}; submit runs to {API_PREFIX}/PipelineRuns/PipelineSubmit/<id>")

    @staticmethod
    def _require_method(request: Request, allowed: str) -> None:
        if request.method != allowed:
            raise RequestError(405, f"{request.method} is not allowed on this route; use {allowed}", {"Allow": allowed})

    def _authenticate(self, request: Request) -> None:
        challenge = {"WWW-Authenticate": 'Bearer realm="lab pipelines"'}
        try:
            expected = read_token(self.workspace)
        except PipelineError as exc:
            logger.error("cannot check bearer tokens: %s", exc)
            raise RequestError(500, "the endpoint cannot check tokens; see the endpoint log") from None
        if expected is None:
            raise RequestError(401, "the endpoint has no token yet; run `lab auth token` on the endpoint's workspace",
                               challenge)
        received = bearer_token(request.header("Authorization"))
        if received is None:
            raise RequestError(401, "missing bearer token; send the header 'Authorization: Bearer <token>' "
                               "with the token from `lab auth token`", challenge)
        if not token_matches(expected, received):
            raise RequestError(401, "invalid bearer token; get the current one with `lab auth token`",
                               {**challenge, "WWW-Authenticate": challenge["WWW-Authenticate"] + ', error="invalid_token"'})

    def _submit(self, pipeline_id: str, request: Request) -> Response:
        try:
            published = get_published(self.workspace, pipeline_id)
        except PublishedNotFound:
            raise RequestError(404, f"no published pipeline with id {pipeline_id} on this endpoint; list them with "
                               "`lab pipeline list` on the endpoint's workspace") from None
        except PipelineError as exc:
            raise RequestError(404, str(exc)) from None
        body = _parse_body(request)
        experiment = body.get("ExperimentName")
        if experiment is None:
            raise RequestError(400, 'missing field "ExperimentName"; send {"ExperimentName": "<name>", ...}')
        if not isinstance(experiment, str) or not EXPERIMENT_NAME.match(experiment):
            raise RequestError(400, f'invalid "ExperimentName" {str(experiment)[:40]!r}; use {EXPERIMENT_NAME_RULE}')
        assignments = body.get("ParameterAssignments") or {}
        if not isinstance(assignments, dict):
            raise RequestError(400, '"ParameterAssignments" must be a JSON object of parameter names and values')
        description = body.get("Description") or ""
        if not isinstance(description, str):
            raise RequestError(400, '"Description" must be a string')

        try:
            definition = get_pipeline(self.workspace, published.pipeline)
        except PipelineError as exc:
            logger.error("published pipeline %s has no definition: %s", published.id, exc)
            raise RequestError(404, f"published pipeline {published.id} refers to {published.pipeline}, which is "
                               "missing from the workspace; create and publish the pipeline again") from None
        parameters = definition.resolve_parameters(assignments)
        run = create_run(self.workspace, definition, published.id, experiment, parameters, description)
        if self.dispatcher is not None:
            self.dispatcher.submit(run)
        logger.info("pipeline %s (%s): queued run %s, parameters %s", published.id, published.name, run.id, parameters)
        return Response(200, {
            "Id": run.id,
            "Status": AZURE_STATUS[run.status],
            "ExperimentName": experiment,
            "PipelineId": published.id,
            "ParameterAssignments": parameters,
        })

    def _run_status(self, run_id: str, experiment: str | None) -> Response:
        try:
            run = get_run(self.workspace, run_id)
        except RunNotFound:
            raise RequestError(404, f"no pipeline run {run_id} on this endpoint; use the Id that the submit "
                               "request returned") from None
        except PipelineError as exc:
            raise RequestError(404, str(exc)) from None
        if experiment is not None and experiment != run.data["experiment_name"]:
            raise RequestError(404, f"run {run_id} does not belong to experiment {experiment[:100]!r}")
        return Response(200, run.to_rest())


def _parse_body(request: Request) -> dict:
    content_type = (request.header("Content-Type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise RequestError(415, f"Content-Type {content_type[:60]!r} is not supported; send application/json")
    if len(request.body) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body has {len(request.body)} bytes; the limit is {MAX_BODY_BYTES}")
    if not request.body.strip():
        raise RequestError(400, 'request body is empty; send {"ExperimentName": "<name>", "ParameterAssignments": {}}')
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"request body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"request body must be a JSON object, got a JSON {type(body).__name__}")
    unsupported = [name for name in body if name in UNSUPPORTED_FIELDS]
    if unsupported:
        raise RequestError(400, f"field {unsupported[0]!r} is not supported by the local endpoint; remove it")
    unknown = [name for name in body if name not in BODY_FIELDS]
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0][:60]!r}; expected {', '.join(BODY_FIELDS)}")
    return body
