"""Train a model on a registered dataset with the local AutoML and register the best one.

``train_model`` is what ``lab train``, ``lab run`` and the local pipelines call. The model is
registered only after the search, ensembles and refit have finished, through the workspace's
atomic registration, so an interrupted or failed run registers nothing.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from lab import models as lab_models
from lab.automl import AutoMLResult, AutoMLSettings, run_automl
from lab.automl.runrecord import new_run_id, update_run
from lab.automl.search import EventHandler
from lab.data import load_dataset
from lab.workspace import Asset, Workspace

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 5
LEADERBOARD_TOP = 10


def train_model(workspace: Workspace, dataset_ref: str | None, settings: AutoMLSettings,
                model_name: str = lab_models.DEFAULT_MODEL_NAME,
                on_event: EventHandler | None = None) -> tuple[Asset, AutoMLResult]:
    """Run AutoML on dataset ``dataset_ref`` (``NAME[:VERSION]``, None for the newest dataset).

    Returns the registered model version and the search result. The run record is written to
    ``workspace.runs_dir / result.run_id``. Raises ``WorkspaceError`` for an unknown dataset,
    ``TrainingError`` when no model can be trained, and ``KeyboardInterrupt`` when the user
    interrupts after the search. After an interruption no model version is registered.
    """
    settings.validate()
    dataset = workspace.get("datasets", dataset_ref)
    frame, schema = load_dataset(dataset)
    label = schema["label"]
    X, y = frame.drop(columns=[label]), frame[label]
    logger.info("training on dataset %s: %d rows, %d feature columns, label %r", dataset.ref, len(frame),
                X.shape[1], label)

    run_id = new_run_id()
    run_dir = workspace.runs_dir / run_id
    run_info = {"dataset": dataset.ref, "label": label, "model_name": model_name}
    result = run_automl(X, y, schema, settings, run_dir=run_dir, run_id=run_id, on_event=on_event,
                        run_info=run_info)

    try:
        asset = register_result(workspace, result, X, schema, dataset.ref, model_name, settings)
    except KeyboardInterrupt:
        update_run(run_dir, status="Canceled", stop_reason="interrupted during model registration")
        raise
    update_run(run_dir, registered_model=asset.ref)
    return asset, result


def register_result(workspace: Workspace, result: AutoMLResult, X: pd.DataFrame, schema: dict,
                    dataset_ref: str, model_name: str, settings: AutoMLSettings) -> Asset:
    """Register ``result.model`` with its schema, input sample and manifest."""
    columns = list(result.model.roles.columns)
    model_schema = {
        "label": schema["label"],
        "columns": [column for column in schema["columns"] if column["name"] in columns],
    }
    sample_records = json.loads(X[columns].head(SAMPLE_ROWS).to_json(orient="records"))
    alerts = [guardrail.message for guardrail in result.guardrails.results if guardrail.status == "alerted"]

    def build(folder: Path) -> dict:
        lab_models.write_model_files(folder, result.model, model_schema, sample_records)
        return _json_safe({
            "dataset": dataset_ref,
            "label": schema["label"],
            "classes": [str(label) for label in result.classes],
            "primary_metric": result.primary_metric,
            "metrics": result.best.metrics,
            "threshold": result.threshold,
            "threshold_objective": settings.resolved_threshold_objective() if result.threshold is not None else None,
            "threshold_metrics": result.threshold_metrics,
            "threshold_max_accuracy_loss": result.threshold_max_accuracy_loss,
            "algorithm": result.best.algorithm,
            "pipeline": result.best.pipeline,
            "run_id": result.run_id,
            "run_dir": str(result.run_dir) if result.run_dir else None,
            "validation": result.validation,
            "stop_reason": result.stop_reason,
            "iterations": result.iterations_run,
            "iterations_by_status": result.iterations_by_status,
            "dropped_columns": list(result.dropped_columns),
            "guardrail_alerts": alerts,
            "leakage_comparison": result.guardrails.leakage_comparison,
            "leaderboard_top": result.leaderboard_top(LEADERBOARD_TOP),
        })

    return workspace.register("models", model_name, build)


def _json_safe(value):
    """Replace NaN and infinities, which strict JSON readers reject, with None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
