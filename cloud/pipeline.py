"""The exercise's training pipeline: build, run, publish, trigger over REST, and follow a run.

The pipeline has one ``AutoMLStep`` named ``automl_module`` whose outputs ``metrics_data`` and
``model_data`` go to the workspace's default datastore.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from cloud import rest
from cloud.automl import build_automl_config
from cloud.errors import CloudError, cause_of_details, cloud_error, with_retry
from cloud.plan import PlannedChange
from cloud.settings import AutoMLSettings, ComputeSettings, DatasetSettings, PipelineSettings, describe_minutes

logger = logging.getLogger(__name__)

PIPELINE_TAG = "lab_pipeline"
TERMINAL = frozenset({"Completed", "Finished", "Failed", "Canceled", "NotResponding"})
POLL_INTERVAL_S = 30


def plan_create(
    settings: PipelineSettings, automl: AutoMLSettings, compute: ComputeSettings, dataset: DatasetSettings
) -> PlannedChange:
    return PlannedChange(
        "build and submit or reuse",
        "pipeline run",
        settings.experiment_name,
        {
            "step": f"AutoMLStep {settings.step_name} (allow_reuse={settings.allow_reuse})",
            "outputs": "metrics_data (Metrics), model_data (Model) on the default datastore",
            "compute": f"{compute.name} ({compute.vm_size}, up to {compute.max_nodes} nodes)",
            "training_data": f"dataset {dataset.name}",
            **automl.automl_config_kwargs(),
        },
        f"the AutoML step runs on {compute.name} for up to {describe_minutes(automl.experiment_timeout_minutes)}; "
        "a reused step costs nothing",
    )


def plan_publish(settings: PipelineSettings) -> PlannedChange:
    return PlannedChange(
        "publish or reuse",
        "published pipeline",
        settings.published_name,
        {"version": settings.version, "description": settings.description},
        "none until triggered",
    )


def plan_trigger(settings: PipelineSettings) -> PlannedChange:
    return PlannedChange(
        "trigger",
        "published pipeline",
        settings.published_name,
        {
            "request": "POST <REST endpoint> with Authorization: Bearer <AAD token>",
            "body": json.dumps(
                {"ExperimentName": settings.trigger_experiment, "ParameterAssignments": settings.parameter_assignments}
            ),
        },
        "one pipeline run; reused steps cost nothing",
    )


def build_automl_step(
    automl: AutoMLSettings, settings: PipelineSettings, dataset, compute_target, datastore=None
):
    """Build the ``AutoMLStep`` and its two outputs (offline); return ``(step, metrics_data, model_data)``.

    ``datastore=None`` lets the SDK use the workspace's default datastore when the pipeline is built.
    """
    from azureml.pipeline.core import PipelineData, TrainingOutput
    from azureml.pipeline.steps import AutoMLStep

    metrics_data = PipelineData(
        name="metrics_data",
        datastore=datastore,
        pipeline_output_name="metrics_output",
        training_output=TrainingOutput(type="Metrics"),
    )
    model_data = PipelineData(
        name="model_data",
        datastore=datastore,
        pipeline_output_name="best_model_output",
        training_output=TrainingOutput(type="Model"),
    )
    step = AutoMLStep(
        name=settings.step_name,
        automl_config=build_automl_config(automl, dataset, compute_target),
        outputs=[metrics_data, model_data],
        allow_reuse=settings.allow_reuse,
    )
    return step, metrics_data, model_data


def create_and_submit(workspace, settings: PipelineSettings, automl: AutoMLSettings, dataset, cluster):
    """Build the pipeline and submit a run; return ``(run, reused)``.

    A run of the same settings, dataset version and cluster that completed or is running is reused.
    """
    from azureml.core import Experiment
    from azureml.pipeline.core import Pipeline, PipelineRun

    fingerprint = automl.fingerprint(f"{dataset.name}:{dataset.version}", cluster.name)
    experiment = Experiment(workspace, settings.experiment_name)
    try:
        for run in with_retry(lambda: list(experiment.get_runs(tags={PIPELINE_TAG: fingerprint})), "list runs"):
            if run.get_status() not in ("Failed", "Canceled", "NotResponding"):
                logger.info("reusing pipeline run %s", run.id)
                return PipelineRun(experiment, run.id), True
        step, _, _ = build_automl_step(automl, settings, dataset, cluster, workspace.get_default_datastore())
        pipeline = Pipeline(workspace, steps=[step], description=settings.description)
        pipeline.validate()
        run = experiment.submit(pipeline, tags={PIPELINE_TAG: fingerprint})
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"building and submitting pipeline to experiment {settings.experiment_name}", exc)
    logger.info("submitted pipeline run %s", run.id)
    return run, False


def latest_pipeline_run(workspace, settings: PipelineSettings, run_id: str | None = None):
    """Return pipeline run ``run_id``, or the newest run this lab submitted that did not fail."""
    from azureml.core import Experiment
    from azureml.pipeline.core import PipelineRun

    experiment = Experiment(workspace, settings.experiment_name)
    if run_id:
        return PipelineRun(experiment, run_id)
    for run in with_retry(lambda: list(experiment.get_runs(tags=PIPELINE_TAG)), "list runs"):
        if run.get_status() not in ("Failed", "Canceled", "NotResponding"):
            return PipelineRun(experiment, run.id)
    raise CloudError(
        f"no pipeline run in experiment {settings.experiment_name}; run `lab cloud pipeline create` first"
    )


def find_published(workspace, settings: PipelineSettings):
    """Return the active published pipeline with this name and version, or None."""
    from azureml.pipeline.core import PublishedPipeline

    published = with_retry(lambda: PublishedPipeline.list(workspace, active_only=True), "list published pipelines")
    matches = [p for p in published if p.name == settings.published_name and p.version == settings.version]
    return matches[0] if matches else None


def publish(workspace, settings: PipelineSettings, run_id: str | None = None):
    """Publish the pipeline of the latest run; return ``(published, reused)``."""
    try:
        existing = find_published(workspace, settings)
        if existing is not None:
            logger.info("reusing published pipeline %s (%s)", existing.name, existing.id)
            return existing, True
        run = latest_pipeline_run(workspace, settings, run_id)
        published = run.publish_pipeline(
            name=settings.published_name, description=settings.description, version=settings.version
        )
    except CloudError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"publishing pipeline {settings.published_name!r} version {settings.version}", exc)
    return published, False


def trigger(workspace, auth_header: dict, settings: PipelineSettings) -> str:
    """Start a run of the published pipeline over REST and return its run id."""
    published = find_published(workspace, settings)
    if published is None:
        raise CloudError(
            f"no active published pipeline {settings.published_name!r} version {settings.version}; "
            "run `lab cloud pipeline publish` first"
        )
    request = rest.build_trigger_request(
        published.endpoint, auth_header, settings.trigger_experiment, settings.parameter_assignments
    )
    return rest.post_trigger_request(request)


def follow_status(
    workspace,
    experiment_name: str,
    run_id: str,
    echo: Callable[[str], None],
    follow: bool = True,
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Print the status of pipeline run ``run_id`` and its steps, until it ends when ``follow``.

    Raises ``CloudError`` with Azure's cause when the run failed.
    """
    from azureml.core import Experiment
    from azureml.pipeline.core import PipelineRun

    run = PipelineRun(Experiment(workspace, experiment_name), run_id)
    last = None
    while True:
        status = with_retry(run.get_status, f"status of pipeline run {run_id}")
        steps = with_retry(lambda: [(s.name, s.get_status()) for s in run.get_steps()], f"steps of {run_id}")
        line = f"pipeline run {run_id}: {status}; steps: " + (", ".join(f"{n} {s}" for n, s in steps) or "none yet")
        if line != last:
            echo(line)
            last = line
        if status in TERMINAL or not follow:
            break
        sleep(poll_interval_s)
    if status in ("Failed", "Canceled", "NotResponding"):
        error = run.get_details().get("error")
        raise CloudError(
            f"pipeline run {run_id} {status.lower()}: {cause_of_details(error)}; open it in Azure ML "
            "studio (Jobs > Pipeline jobs) for the step logs"
        )
    return status
