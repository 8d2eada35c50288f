"""Pipeline runs on disk: state, step timings, errors and outputs.

A run is one folder, ``pipelines/runs/<run id>/``::

    run.json                         state, parameters, steps with timings and errors
    steps/<step>/log.txt             the step's stdout and stderr
    steps/<step>/result.json         what the step reported (error message, registered model)
    outputs/metrics_data/...         named outputs, as Azure's ``get_pipeline_output(name)``
    outputs/model_data/...

Several processes write ``run.json``: the endpoint (creating and recovering runs), the runner (state
and step timings) and `lab pipeline cancel`. Each change is a read-modify-write under the run's own
file lock, written atomically, so readers never see a half-written file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from lab.pipelines.definition import PipelineDefinition, pipelines_dir
from lab.pipelines.errors import PipelineError
from lab.workspace import Workspace, atomic_write_json, read_json, utc_now

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
QUEUED, RUNNING, COMPLETED, FAILED, CANCELED = "queued", "running", "completed", "failed", "canceled"
TERMINAL_STATES = (COMPLETED, FAILED, CANCELED)
STATES = (QUEUED, RUNNING, *TERMINAL_STATES)
# Azure ML's run status names, used in REST responses.
AZURE_STATUS = {QUEUED: "Queued", RUNNING: "Running", COMPLETED: "Completed", FAILED: "Failed", CANCELED: "Canceled"}
WAIT_POLL_SECONDS = 0.5


def runs_dir(workspace: Workspace) -> Path:
    return pipelines_dir(workspace) / "runs"


def run_dir(workspace: Workspace, run_id: str) -> Path:
    _check_run_id(run_id)
    return runs_dir(workspace) / run_id


def _check_run_id(run_id: str) -> None:
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise PipelineError(f"invalid run id {run_id!r}; expected a UUID as printed by `lab pipeline runs`") from None


@dataclass(frozen=True)
class RunOutput:
    """A named output of a completed run, as Azure's ``PortDataReference``."""

    run_id: str
    name: str
    path: Path

    def download(self, local_path: str | Path) -> Path:
        """Copy the output folder's files into ``local_path/<output name>/``; returns that folder."""
        target = Path(local_path) / self.name
        if target.exists():
            raise PipelineError(f"{target} already exists; pass an empty --to folder or remove it")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            shutil.copytree(self.path, staging)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("downloaded output %s of run %s to %s", self.name, self.run_id, target)
        return target


@dataclass(frozen=True)
class PipelineRun:
    """A snapshot of one run's record; call ``refresh`` for a newer one."""

    workspace: Workspace
    data: dict

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def path(self) -> Path:
        return run_dir(self.workspace, self.id)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    def refresh(self) -> PipelineRun:
        return get_run(self.workspace, self.id)

    def get_pipeline_output(self, name: str) -> RunOutput:
        """Return a named output; raises ``PipelineError`` unless the step that writes it completed."""
        outputs = self.data.get("outputs", {})
        if name not in outputs:
            declared = ", ".join(outputs) or "none"
            raise PipelineError(f"run {self.id} has no output named {name!r} (outputs: {declared})")
        step = outputs[name]["step"]
        step_status = self.step(step)["status"]
        path = self.path / "outputs" / name
        if step_status == COMPLETED and path.is_dir():
            return RunOutput(self.id, name, path)
        unavailable = f"output {name!r} of run {self.id} is not available: step {step} is {step_status}"
        if self.is_terminal:
            raise PipelineError(
                f"{unavailable}, and the run has ended ({self.status}), so this output will never be written; "
                "trigger the pipeline again"
            )
        raise PipelineError(f"{unavailable}; wait for the run with `lab pipeline run-status {self.id} --wait`")

    def step(self, name: str) -> dict:
        for step in self.data["steps"]:
            if step["name"] == name:
                return step
        raise PipelineError(f"run {self.id} has no step {name!r}")

    def wait(self, timeout_seconds: float | None = None, poll_seconds: float = WAIT_POLL_SECONDS) -> PipelineRun:
        """Poll until the run ends; raises ``PipelineError`` after ``timeout_seconds``."""
        run = self
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while not run.is_terminal:
            if deadline is not None and time.monotonic() >= deadline:
                raise PipelineError(
                    f"run {self.id} is still {run.status} after {timeout_seconds:g} s and goes on; follow it with "
                    f"`lab pipeline run-status {self.id} --wait`, and check that `lab pipeline serve` is running"
                )
            time.sleep(poll_seconds)
            run = run.refresh()
        return run

    def to_rest(self) -> dict:
        """Return the run in the shape of Azure's run history response (camelCase, Azure status names).

        Error messages name files by their path inside the workspace, so a remote client does not
        learn where the workspace is on the endpoint's machine.
        """
        redact = self._redact_workspace
        return {
            "runId": self.id,
            "status": AZURE_STATUS[self.status],
            "experimentName": self.data["experiment_name"],
            "pipelineId": self.data["published_id"],
            "createdUtc": self.data["created_at"],
            "startTimeUtc": self.data.get("started_at"),
            "endTimeUtc": self.data.get("ended_at"),
            "parameters": self.data["parameters"],
            "error": redact(self.data.get("error")),
            "steps": [
                {
                    "name": step["name"],
                    "status": AZURE_STATUS[step["status"]],
                    "startTimeUtc": step.get("started_at"),
                    "endTimeUtc": step.get("ended_at"),
                    "durationSeconds": step.get("duration_seconds"),
                    "error": redact(step.get("error")),
                }
                for step in self.data["steps"]
            ],
        }


    def _redact_workspace(self, text: str | None) -> str | None:
        return redact_workspace_path(text, self.workspace) if text else text


def redact_workspace_path(text: str, workspace: Workspace) -> str:
    """Return ``text`` with the workspace's absolute path replaced by ``<workspace>``."""
    roots = {str(workspace.root.resolve()), str(workspace.root.absolute())}
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root, "<workspace>")
    return text


def create_run(
    workspace: Workspace,
    definition: PipelineDefinition,
    published_id: str,
    experiment_name: str,
    parameters: dict[str, Any],
    description: str = "",
) -> PipelineRun:
    """Write a new queued run and return it; the endpoint's dispatcher starts it."""
    run_id = str(uuid.uuid4())
    folder = run_dir(workspace, run_id)
    folder.mkdir(parents=True)
    outputs = {output: {"step": step.name} for step in definition.steps for output in step.outputs}
    data = {
        "id": run_id,
        "status": QUEUED,
        "experiment_name": experiment_name,
        "description": description,
        "published_id": published_id,
        "pipeline": definition.ref,
        "dataset": definition.dataset,
        "label": definition.label,
        "model_name": definition.model_name,
        "parameters": parameters,
        "created_at": utc_now(),
        # Orders runs created within the same second; created_at has whole seconds.
        "created_ns": time.time_ns(),
        "started_at": None,
        "ended_at": None,
        "runner": None,
        "cancel_requested": False,
        "error": None,
        "registered_model": None,
        "steps": [
            {"name": step.name, "kind": step.kind, "status": QUEUED, "started_at": None, "ended_at": None,
             "duration_seconds": None, "error": None, "exit_code": None, "pid": None}
            for step in definition.steps
        ],
        "outputs": outputs,
    }
    atomic_write_json(folder / RUN_FILE, data)
    # Debug only: the endpoint logs the queued run with its parameters at INFO.
    logger.debug("queued run %s of pipeline %s (experiment %s)", run_id, definition.ref, experiment_name)
    return PipelineRun(workspace, data)


class RunNotFound(PipelineError):
    """No run with this id exists in the workspace."""


def get_run(workspace: Workspace, run_id: str) -> PipelineRun:
    """Return the run's current record; raises ``RunNotFound`` for an unknown id."""
    path = run_dir(workspace, run_id) / RUN_FILE
    if not path.is_file():
        raise RunNotFound(f"no pipeline run {run_id} in workspace {workspace.root}; list runs with `lab pipeline runs`")
    return PipelineRun(workspace, read_json(path))


def list_runs(workspace: Workspace) -> list[PipelineRun]:
    """List all runs, oldest first; folders without ``run.json`` (being created) are skipped."""
    base = runs_dir(workspace)
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        if (folder / RUN_FILE).is_file():
            found.append(PipelineRun(workspace, read_json(folder / RUN_FILE)))
    return sorted(found, key=lambda run: (run.data["created_at"], run.data.get("created_ns", 0), run.id))


@contextlib.contextmanager
def _run_lock(workspace: Workspace, run_id: str) -> Iterator[None]:
    with open(run_dir(workspace, run_id) / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_run(workspace: Workspace, run_id: str, change: Callable[[dict], None]) -> PipelineRun:
    """Apply ``change`` to the run's record under its lock and write it back atomically.

    Raises ``RunNotFound`` for an unknown id.
    """
    # The lock file lives in the run's folder, which an unknown id does not have.
    get_run(workspace, run_id)
    with _run_lock(workspace, run_id):
        run = get_run(workspace, run_id)
        data = run.data
        change(data)
        atomic_write_json(run.path / RUN_FILE, data)
    return PipelineRun(workspace, data)


def finish_run(data: dict, status: str, error: str | None = None) -> None:
    """Set a terminal state on a run record in place, and end its unfinished steps with it."""
    data["status"] = status
    data["ended_at"] = utc_now()
    if error and not data.get("error"):
        data["error"] = error
    for step in data["steps"]:
        if step["status"] in TERMINAL_STATES:
            continue
        # A step cut off while running shares the run's failure; a step that never started is canceled.
        if step["status"] == RUNNING and status == FAILED:
            step["status"] = FAILED
        else:
            step["status"] = CANCELED
        if step["started_at"]:
            step["ended_at"] = data["ended_at"]
