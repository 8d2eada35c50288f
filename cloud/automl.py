"""Submit the AutoML run (or reuse a matching one), follow it, and register its best model."""

from __future__ import annotations

import logging
import time
from typing import Callable

from cloud.errors import CloudError, cause_of_details, cloud_error, with_retry
from cloud.plan import PlannedChange
from cloud.progress import (
    PROGRESS_HEADER,
    ChildRecord,
    ProgressTracker,
    TERMINAL_STATUSES,
    format_progress,
)
from cloud.settings import AutoMLSettings, ComputeSettings, DatasetSettings, describe_minutes

logger = logging.getLogger(__name__)

FINGERPRINT_TAG = "lab_fingerprint"
RUN_ID_TAG = "automl_run_id"
POLL_INTERVAL_S = 30
REUSABLE_STATUSES = ("Completed", "Running", "NotStarted", "Starting", "Preparing", "Queued", "Provisioning", "Finalizing")


def plan_automl(settings: AutoMLSettings, compute: ComputeSettings, dataset: DatasetSettings) -> list[PlannedChange]:
    run_settings = {
        "experiment": settings.experiment_name,
        "compute": f"{compute.name} ({compute.vm_size}, up to {compute.max_nodes} nodes)",
        "training_data": f"dataset {dataset.name} (latest matching version)",
        **settings.automl_config_kwargs(),
    }
    if settings.n_cross_validations is None:
        run_settings["n_cross_validations"] = "(AutoML's default validation)"
    cost = (
        f"up to {min(settings.max_concurrent_iterations, compute.max_nodes)} node(s) of {compute.vm_size} for up "
        f"to {describe_minutes(settings.experiment_timeout_minutes)} of search, plus node start-up and the final "
        "ensembles"
    )
    return [
        PlannedChange("submit or reuse", "AutoML run", settings.experiment_name, run_settings, cost),
        PlannedChange("register or reuse", "model", settings.model_name, {"from": "the best child run"}, "none"),
    ]


def build_automl_config(settings: AutoMLSettings, training_data, compute_target):
    """Build the SDK's ``AutoMLConfig`` (offline); ``compute_target`` is a target object or its name."""
    from azureml.train.automl import AutoMLConfig

    return AutoMLConfig(
        training_data=training_data,
        compute_target=compute_target,
        **settings.automl_config_kwargs(),
    )


def find_reusable_run(experiment, fingerprint: str):
    """Return the newest run tagged with ``fingerprint`` that completed or is still going, or None."""
    from azureml.train.automl.run import AutoMLRun

    runs = with_retry(lambda: list(experiment.get_runs(tags={FINGERPRINT_TAG: fingerprint})), "list runs")
    for run in runs:
        status = run.get_status()
        if status in REUSABLE_STATUSES:
            return AutoMLRun(experiment, run.id)
        logger.info("not reusing run %s (status %s)", run.id, status)
    return None


def submit_or_reuse(workspace, settings: AutoMLSettings, dataset, cluster):
    """Return ``(run, reused)`` for the AutoML run on ``dataset`` and ``cluster``.

    A run with the same settings, dataset version and cluster that completed or is still running
    is reused; a failed or canceled one is not.
    """
    from azureml.core import Experiment

    dataset_ref = f"{dataset.name}:{dataset.version}"
    fingerprint = settings.fingerprint(dataset_ref, cluster.name)
    experiment = Experiment(workspace, settings.experiment_name)
    try:
        existing = find_reusable_run(experiment, fingerprint)
        if existing is not None:
            logger.info("reusing AutoML run %s", existing.id)
            return existing, True
        config = build_automl_config(settings, dataset, cluster)
        run = experiment.submit(config, show_output=False, tags={FINGERPRINT_TAG: fingerprint, "dataset": dataset_ref})
    except CloudError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"submitting AutoML run to experiment {settings.experiment_name}", exc)
    logger.info("submitted AutoML run %s", run.id)
    return run, False


def child_records(run, primary_metric: str, scores: dict[str, float | None]) -> list[ChildRecord]:
    """Read the child runs of ``run``; ``scores`` caches the metric of finished children between polls."""
    records = []
    for child in run.get_children():
        properties = child.properties or {}
        iteration = properties.get("iteration")
        if iteration is None:
            continue  # the setup and featurization runs have no iteration
        status = child.status or child.get_status()
        error = None
        if status in TERMINAL_STATUSES and child.id not in scores:
            value = child.get_metrics(name=primary_metric).get(primary_metric)
            scores[child.id] = float(value) if isinstance(value, (int, float)) else None
            if status == "Failed":
                error = cause_of_details(child.get_details().get("error"))
        pipeline = " ".join(part for part in (properties.get("run_preprocessor"), properties.get("run_algorithm")) if part)
        records.append(ChildRecord(child.id, int(iteration), pipeline or "?", status, scores.get(child.id), error))
    return records


def follow_run(
    run,
    primary_metric: str,
    echo: Callable[[str], None],
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ChildRecord]:
    """Print one line per finished child run until ``run`` ends; return the last child records.

    Raises ``CloudError`` with Azure's error when the parent run failed or was canceled.
    """
    tracker = ProgressTracker()
    scores: dict[str, float | None] = {}
    echo(PROGRESS_HEADER)
    while True:
        status = with_retry(run.get_status, f"status of run {run.id}")
        records = with_retry(lambda: child_records(run, primary_metric, scores), f"children of run {run.id}")
        for line in tracker.update(records):
            echo(format_progress(line))
        if status in TERMINAL_STATUSES:
            break
        sleep(poll_interval_s)
    if status != "Completed":
        error = run.get_details().get("error")
        raise CloudError(
            f"AutoML run {run.id} {status.lower()}: {cause_of_details(error)}; read its logs in Azure ML "
            "studio (Jobs > the run > Outputs + logs), fix the cause and run `lab cloud automl` again"
        )
    return records


def register_best_model(run, settings: AutoMLSettings):
    """Register the best child run's model as ``settings.model_name``, or reuse the one already registered."""
    from azureml.core.model import Model

    workspace = run.experiment.workspace
    try:
        existing = with_retry(
            lambda: Model.list(workspace, name=settings.model_name, tags=[[RUN_ID_TAG, run.id]]), "list models"
        )
        if existing:
            model = max(existing, key=lambda candidate: candidate.version)
            logger.info("reusing model %s:%s registered from run %s", model.name, model.version, run.id)
            return model
        best = run.get_best_child()
        tags = {RUN_ID_TAG: run.id, "best_child_run_id": best.id, "primary_metric": settings.primary_metric}
        return run.register_model(
            model_name=settings.model_name,
            description=f"best model of AutoML run {run.id} ({settings.primary_metric})",
            tags=tags,
        )
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"registering the best model of run {run.id} as {settings.model_name}", exc)
