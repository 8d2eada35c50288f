"""Local pipelines: create an AutoML training pipeline, publish it behind a REST endpoint that
accepts Azure's published-pipeline call, and run it in the background.

Modules, in the order a run goes through them:

- ``definition``: steps, declared parameters and named outputs;
- ``publish``: display name, version and id of a published pipeline;
- ``auth``: the bearer token;
- ``api`` and ``server``: the REST endpoint;
- ``dispatcher``: starts queued runs and recovers them after a restart;
- ``runner`` and ``steps``: one process per run and one per step;
- ``runs``: run state on disk and outputs;
- ``client``: the trigger, for the local endpoint and for Azure.
"""

from lab.pipelines.auth import get_or_create_token, read_token
from lab.pipelines.client import build_submit_request, get_run_status, submit, wait_for_run
from lab.pipelines.definition import (
    METRICS_OUTPUT,
    MODEL_OUTPUT,
    PipelineDefinition,
    create_pipeline,
    get_pipeline,
    list_pipelines,
)
from lab.pipelines.errors import PipelineError, RequestError, TriggerError
from lab.pipelines.publish import PublishedPipeline, get_published, list_published, publish_pipeline
from lab.pipelines.runner import cancel_run
from lab.pipelines.runs import PipelineRun, RunOutput, get_run, list_runs
from lab.pipelines.server import PipelineServer

__all__ = [
    "METRICS_OUTPUT",
    "MODEL_OUTPUT",
    "PipelineDefinition",
    "PipelineError",
    "PipelineRun",
    "PipelineServer",
    "PublishedPipeline",
    "RequestError",
    "RunOutput",
    "TriggerError",
    "build_submit_request",
    "cancel_run",
    "create_pipeline",
    "get_or_create_token",
    "get_pipeline",
    "get_published",
    "get_run",
    "get_run_status",
    "list_pipelines",
    "list_published",
    "list_runs",
    "publish_pipeline",
    "read_token",
    "submit",
    "wait_for_run",
]
