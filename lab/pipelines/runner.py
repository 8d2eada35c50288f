"""Run one pipeline run's steps in order, each in its own process.

The endpoint starts ``python -m lab.pipelines.runner --workspace ROOT RUN_ID`` in a new session,
so the run goes on when the client disconnects and when the endpoint is stopped with Ctrl-C. The
runner starts every step as ``python -m lab.pipelines.steps``: a crash of a step (an exception, a
signal, an out-of-memory kill) marks the run failed with the step's error, and the runner itself
stays small enough not to crash with it. On Linux a step gets SIGTERM when its runner dies (see
``lab.pipelines.steps.stop_with_parent``), so it does not train on for a run that is over.

SIGTERM cancels the run: the runner forwards it to the running step, whose workspace registration
cleans up its staging folder, and marks the step and the run canceled.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.pipelines.errors import PipelineError
from lab.pipelines.runs import (
    CANCELED,
    COMPLETED,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    finish_run,
    get_run,
    run_dir,
    update_run,
)
from lab.workspace import Workspace, read_json, utc_now

logger = logging.getLogger(__name__)

RESULT_FILE = "result.json"
LOG_FILE = "log.txt"
RUNNER_LOG_FILE = "runner.log"


class _Cancel:
    """The runner's cancel flag and the step process that SIGTERM must reach."""

    def __init__(self):
        self.requested = False
        self.step_process: subprocess.Popen | None = None

    def handle(self, signum, frame) -> None:
        self.requested = True
        if self.step_process is not None and self.step_process.poll() is None:
            self.step_process.terminate()


def execute_run(workspace: Workspace, run_id: str) -> str:
    """Run every step of ``run_id`` in order and return the run's final state."""
    cancel = _Cancel()
    signal.signal(signal.SIGTERM, cancel.handle)

    def start(data: dict) -> None:
        if data["status"] in TERMINAL_STATES:
            return
        data["status"] = RUNNING
        data["started_at"] = data["started_at"] or utc_now()

    run = update_run(workspace, run_id, start)
    if run.is_terminal:
        logger.info("run %s is already %s; nothing to do", run_id, run.status)
        return run.status
    logger.info("run %s started: steps %s", run_id, ", ".join(step["name"] for step in run.data["steps"]))

    for step in run.data["steps"]:
        if cancel.requested or get_run(workspace, run_id).data["cancel_requested"]:
            update_run(workspace, run_id, lambda data: finish_run(data, CANCELED, "canceled by request"))
            return CANCELED
        status = _execute_step(workspace, run_id, step["name"], cancel)
        if status != COMPLETED:
            return status

    update_run(workspace, run_id, lambda data: finish_run(data, COMPLETED))
    logger.info("run %s completed", run_id)
    return COMPLETED


def _execute_step(workspace: Workspace, run_id: str, step_name: str, cancel: _Cancel) -> str:
    """Run one step in a child process and record its timing and outcome; return the run's state."""
    step_dir = run_dir(workspace, run_id) / "steps" / step_name
    step_dir.mkdir(parents=True, exist_ok=True)
    (step_dir / RESULT_FILE).unlink(missing_ok=True)
    command = [sys.executable, "-m", "lab.pipelines.steps", "--workspace", str(workspace.root),
               "--parent-pid", str(os.getpid()), run_id, step_name]

    def begin(data: dict) -> None:
        record = _step_record(data, step_name)
        record.update(status=RUNNING, started_at=utc_now(), ended_at=None, error=None, exit_code=None)

    update_run(workspace, run_id, begin)
    started = time.monotonic()
    logger.info("run %s: step %s started", run_id, step_name)
    with open(step_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cancel.step_process = process
        if cancel.requested:
            process.terminate()
        update_run(workspace, run_id, lambda data: _step_record(data, step_name).update(pid=process.pid))
        exit_code = process.wait()
    cancel.step_process = None
    duration = round(time.monotonic() - started, 3)
    result = _read_result(step_dir)

    if exit_code == 0:
        status, error = COMPLETED, None
    elif cancel.requested:
        status, error = CANCELED, "canceled by request"
    else:
        status, error = FAILED, result.get("error") or _describe_exit(exit_code, step_dir / LOG_FILE)

    def end(data: dict) -> None:
        record = _step_record(data, step_name)
        record.update(status=status, ended_at=utc_now(), duration_seconds=duration, error=error, exit_code=exit_code)
        if status == COMPLETED and result.get("registered_model"):
            data["registered_model"] = result["registered_model"]
        if status == FAILED:
            finish_run(data, FAILED, f"step {step_name} failed: {error}")
        elif status == CANCELED:
            finish_run(data, CANCELED, "canceled by request")

    update_run(workspace, run_id, end)
    logger.info("run %s: step %s %s after %.1f s%s", run_id, step_name, status, duration,
                f" ({error})" if error else "")
    return status


def _step_record(data: dict, step_name: str) -> dict:
    for record in data["steps"]:
        if record["name"] == step_name:
            return record
    raise PipelineError(f"run {data['id']} has no step {step_name!r}")


def _read_result(step_dir: Path) -> dict:
    try:
        return read_json(step_dir / RESULT_FILE)
    except (FileNotFoundError, ValueError):
        return {}


def _describe_exit(exit_code: int, log_path: Path) -> str:
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"the step process was killed by {name}; see {log_path}"
    return f"the step process exited with code {exit_code} without a result; see {log_path}"


# -- starting and stopping runners (used by the endpoint and `lab pipeline cancel`) ----------------


def start_runner(workspace: Workspace, run_id: str) -> subprocess.Popen | None:
    """Start the runner of a queued run in a new session; returns None if the run is no longer queued.

    The check and the start happen under the run's lock, so a concurrent cancel either finds the run
    still queued (and cancels it before it starts) or finds the runner's pid (and signals it).
    """
    started: list[subprocess.Popen] = []
    folder = run_dir(workspace, run_id)
    command = [sys.executable, "-m", "lab.pipelines.runner", "--workspace", str(workspace.root), run_id]

    def launch(data: dict) -> None:
        if data["status"] != QUEUED:
            return
        with open(folder / RUNNER_LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        started.append(process)
        data["status"] = RUNNING
        data["started_at"] = utc_now()
        data["runner"] = {"pid": process.pid, "start_ticks": process_start_ticks(process.pid), "endpoint_pid": os.getpid()}

    update_run(workspace, run_id, launch)
    if started:
        logger.info("run %s: runner started with pid %d", run_id, started[0].pid)
    return started[0] if started else None


def cancel_run(workspace: Workspace, run_id: str) -> str:
    """Cancel a queued or running run and return its state after the request.

    A queued run is canceled at once. A running run's runner gets SIGTERM and records the
    cancellation itself; if the runner is gone, the run is marked canceled here.
    Raises ``PipelineError`` when the run has already ended.
    """
    def request(data: dict) -> None:
        if data["status"] in TERMINAL_STATES:
            raise PipelineError(f"run {run_id} is already {data['status']}; nothing to cancel")
        data["cancel_requested"] = True
        if data["status"] == QUEUED:
            finish_run(data, CANCELED, "canceled before it started")
        elif not runner_alive(data.get("runner")):
            finish_run(data, CANCELED, "canceled; its runner process had already ended")

    run = update_run(workspace, run_id, request)
    if run.status != RUNNING:
        return run.status
    pid = run.data["runner"]["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        run = update_run(workspace, run_id, lambda data: None if data["status"] in TERMINAL_STATES
                         else finish_run(data, CANCELED, "canceled; its runner process had already ended"))
        return run.status
    logger.info("run %s: sent SIGTERM to runner pid %d", run_id, pid)
    return run.status


def process_start_ticks(pid: int) -> int | None:
    """Return the process start time in clock ticks from ``/proc`` (Linux), or None elsewhere.

    Stored with the pid so that a recycled pid is not mistaken for the runner after a restart.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # Fields after the command name start at field 3 (state); starttime is field 22.
    return int(fields[19]) if fields[0] != "Z" else None


def runner_alive(runner: dict | None) -> bool:
    """Return True when the recorded runner process still exists and is not a zombie."""
    if not runner:
        return False
    pid = runner["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    expected = runner.get("start_ticks")
    if expected is None:
        return True
    return process_start_ticks(pid) == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.pipelines.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workspace = Workspace(args.workspace)
    try:
        status = execute_run(workspace, args.run_id)
    except Exception as exc:
        logger.exception("run %s: runner failed", args.run_id)
        message = f"the runner failed: {exc.__class__.__name__}: {exc}"
        update_run(workspace, args.run_id,
                   lambda data: None if data["status"] in TERMINAL_STATES else finish_run(data, FAILED, message))
        return 1
    return 0 if status == COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main())
