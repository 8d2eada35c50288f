"""The steps of the AutoML training pipeline, each run as ``python -m lab.pipelines.steps``.

``automl_module`` trains on the run's pinned dataset version inside a scratch workspace under the
step's folder, so that nothing is registered in the real workspace until the whole training has
succeeded. It writes the outputs ``metrics_data`` (``metrics.json``) and ``model_data`` (the model
files and their manifest). ``register_model`` then registers ``model_data`` as a new version of
the pipeline's model in the real workspace, atomically.

A step reports to the runner through ``result.json`` in its folder and its exit code: 0 for
success, 1 with ``{"error": ...}`` for a failure. SIGTERM ends a step through ``SystemExit``, so
that the workspace's staging cleanup runs.

On Linux a step stops soon after its runner dies, for example by ``kill -9``, because it requests
SIGTERM for that event with ``prctl(PR_SET_PDEATHSIG)``. So an interrupted run does not go on
training in the background and write into a run that is already marked failed.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import math
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.models import MODEL_FILE
from lab.pipelines.definition import AUTOML_STEP, METRICS_OUTPUT, MODEL_OUTPUT, REGISTER_STEP
from lab.pipelines.errors import PipelineError
from lab.pipelines.runner import RESULT_FILE
from lab.pipelines.runs import PipelineRun, get_run
from lab.workspace import MANIFEST, Workspace, atomic_write_json, read_json

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
# Manifest fields that the workspace sets on registration; the rest is copied to the new version.
_REGISTRATION_FIELDS = ("kind", "name", "version", "registered_at")


def run_automl_step(workspace: Workspace, run: PipelineRun) -> dict:
    """Train with the run's parameters and write the ``metrics_data`` and ``model_data`` outputs."""
    from lab.automl.settings import AutoMLSettings
    from lab.training import train_model

    parameters = run.data["parameters"]
    settings = AutoMLSettings(
        primary_metric=parameters["primary_metric"],
        timeout_minutes=float(parameters["timeout_minutes"]),
    ).validate()
    scratch = _scratch_workspace(workspace, run)
    logger.info(
        "training on dataset %s for up to %.2f min, primary metric %s",
        run.data["dataset"], settings.timeout_minutes, settings.primary_metric,
    )
    model, result = train_model(scratch, run.data["dataset"], settings, run.data["model_name"], on_event=_log_event)

    metrics = metrics_document(run, settings.to_json(), model.manifest, result)
    _write_output(run, METRICS_OUTPUT, lambda folder: atomic_write_json(folder / METRICS_FILE, metrics))
    _write_output(run, MODEL_OUTPUT, lambda folder: _copy_files(model.path, folder))
    return {"trained_model": model.ref, "primary_metric": settings.primary_metric}


def run_register_step(workspace: Workspace, run: PipelineRun) -> dict:
    """Register the ``model_data`` output as a new version of the run's model; returns its ref."""
    source = run.get_pipeline_output(MODEL_OUTPUT).path
    if not (source / MODEL_FILE).is_file() or not (source / MANIFEST).is_file():
        raise PipelineError(f"{source} has no {MODEL_FILE} or {MANIFEST}; the training step wrote no model")
    trained = read_json(source / MANIFEST)
    fields = {key: value for key, value in trained.items() if key not in _REGISTRATION_FIELDS}
    fields["pipeline_run_id"] = run.id
    fields["pipeline"] = run.data["pipeline"]

    def build(folder: Path) -> dict:
        _copy_files(source, folder)
        (folder / MANIFEST).unlink()
        return fields

    asset = workspace.register("models", run.data["model_name"], build)
    return {"registered_model": asset.ref}


STEPS = {AUTOML_STEP: run_automl_step, REGISTER_STEP: run_register_step}


def _scratch_workspace(workspace: Workspace, run: PipelineRun) -> Workspace:
    """Return a workspace under the step's folder that contains only the run's dataset version."""
    dataset = workspace.get("datasets", run.data["dataset"])
    scratch = Workspace(run.path / "steps" / AUTOML_STEP / "workspace")
    target = scratch.root / "datasets" / dataset.name / str(dataset.version)
    if target.exists():
        shutil.rmtree(scratch.root)
    shutil.copytree(dataset.path, target)
    return scratch


def _write_output(run: PipelineRun, name: str, write) -> Path:
    """Write a named output through a staging folder, so it is complete or absent."""
    target = run.path / "outputs" / name
    staging = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.part")
    staging.mkdir(parents=True)
    try:
        write(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote output %s to %s", name, target)
    return target


def _copy_files(source: Path, folder: Path) -> None:
    for path in source.iterdir():
        if path.name.startswith("."):
            continue
        if path.is_dir():
            shutil.copytree(path, folder / path.name)
        else:
            shutil.copy2(path, folder / path.name)


def metrics_document(run: PipelineRun, settings: dict, model_manifest: dict, result: Any) -> dict:
    """Build ``metrics.json``: the run's settings, the best child run and every child run's metrics.

    ``child_runs`` maps the ids of completed child runs to metric values, as Azure's
    ``metrics_data`` output does. ``all_child_runs`` lists every child run with its status,
    including candidates that failed or that the time budget cut off, which ``iterations_run``
    counts but the leaderboard leaves out.
    """
    leaderboard = [_json_safe(child.to_json()) for child in result.leaderboard]
    return {
        "pipeline_run_id": run.id,
        "automl_run_id": result.run_id,
        "dataset": run.data["dataset"],
        "primary_metric": result.primary_metric,
        "settings": settings,
        "stop_reason": result.stop_reason,
        "validation": result.validation,
        "elapsed_seconds": round(result.elapsed_seconds, 3),
        "iterations_run": result.iterations_run,
        "threshold": result.threshold,
        "best_child_run_id": result.best.child_run_id,
        "best_metrics": _json_safe(result.best.metrics),
        "guardrails": [{"name": g.name, "status": g.status, "message": g.message} for g in result.guardrails.results],
        "child_runs": {child["child_run_id"]: child["metrics"] for child in leaderboard},
        "all_child_runs": all_child_runs(result, leaderboard),
        "leaderboard": leaderboard,
        "model": {key: model_manifest.get(key) for key in ("name", "version", "algorithm", "primary_metric")},
    }


_CHILD_SUMMARY_FIELDS = ("child_run_id", "iteration", "algorithm", "pipeline", "status", "error", "duration_seconds")


def all_child_runs(result: Any, leaderboard: list[dict]) -> list[dict]:
    """Summarize every child run of the AutoML run, in iteration order.

    The search result keeps only completed child runs, so the others are read from the run
    record's ``children/`` folder. Without a record on disk, only the leaderboard is listed.
    """
    children = {child["child_run_id"]: child for child in leaderboard}
    folder = Path(result.run_dir) / "children" if result.run_dir else None
    if folder is not None and folder.is_dir():
        for path in folder.glob("*.json"):
            child = read_json(path)
            children.setdefault(child["child_run_id"], _json_safe(child))
    ordered = sorted(children.values(), key=lambda child: (child.get("iteration", 0), child["child_run_id"]))
    return [{key: child.get(key) for key in _CHILD_SUMMARY_FIELDS} for child in ordered]


def _json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinite floats replaced by None, which JSON cannot carry."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _log_event(event: Any) -> None:
    """Log one line per AutoML event; the search logs the details itself."""
    data = getattr(event, "data", {}) or {}
    child = data.get("child")
    if child is not None:
        logger.info("automl %s: %s %s", event.kind, child.child_run_id, child.pipeline)
    else:
        logger.info("automl %s: %s", event.kind,
                    {key: value for key, value in data.items() if isinstance(value, (str, int, float))})


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# The runner's pid when the step is tied to it, so that the SIGTERM handler can log the cause.
_runner_pid: int | None = None


def _raise_system_exit(signum, frame) -> None:
    runner_gone = _runner_pid is not None and os.getppid() != _runner_pid
    reason = "its runner ended" if runner_gone else "canceled, or sent by another process"
    logger.warning("step stopped by %s (%s)", signal.Signals(signum).name, reason)
    raise SystemExit(128 + signum)


def stop_with_parent(parent_pid: int) -> bool:
    """Ask Linux to send this process SIGTERM when its parent dies; returns False where unsupported.

    Exits at once if the parent ``parent_pid`` is already gone, because the kernel would never send
    the signal then.
    """
    if not sys.platform.startswith("linux"):
        # NOTE: elsewhere a step whose runner is killed keeps running until its budget ends.
        logger.warning("cannot tie the step to its runner on %s; it would outlive a killed runner", sys.platform)
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed (%s); the step would outlive a killed runner",
                       os.strerror(ctypes.get_errno()))
        return False
    if os.getppid() != parent_pid:
        logger.error("the runner (pid %d) ended before the step started; stopping", parent_pid)
        raise SystemExit(128 + signal.SIGTERM)
    return True


def main(argv: list[str] | None = None) -> int:
    global _runner_pid
    parser = argparse.ArgumentParser(prog="python -m lab.pipelines.steps", description="Run one pipeline step.")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("run_id")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--parent-pid", type=int, help="Runner pid; the step stops when that process dies.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _raise_system_exit)
    if args.parent_pid is not None:
        _runner_pid = args.parent_pid
        stop_with_parent(args.parent_pid)

    workspace = Workspace(args.workspace)
    run = get_run(workspace, args.run_id)
    result_path = run.path / "steps" / args.step / RESULT_FILE
    logger.info("run %s: step %s started in pid %d", run.id, args.step, os.getpid())
    try:
        result = STEPS[args.step](workspace, run)
    except LabError as exc:
        logger.error("run %s: step %s failed: %s", run.id, args.step, exc)
        atomic_write_json(result_path, {"error": str(exc)})
        return 1
    except Exception as exc:
        logger.exception("run %s: step %s failed", run.id, args.step)
        atomic_write_json(result_path, {"error": f"{exc.__class__.__name__}: {exc}"})
        return 1
    atomic_write_json(result_path, result)
    logger.info("run %s: step %s completed: %s", run.id, args.step, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
