"""Start queued runs, watch their runners, and recover runs after an endpoint restart.

The dispatcher lives in the endpoint process. It starts at most ``max_concurrent_runs`` runners
at a time, oldest queued run first, and polls them every ``poll_seconds``.

On start-up it reads every run on disk. A queued run is started (resumed). A running run whose
runner process is still alive is watched until it ends. A running run whose runner is gone is
marked failed, because its step was cut off in the middle and its outputs cannot be trusted.
Stopping the dispatcher leaves running runners alone: they finish their run on their own.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import deque

from lab.pipelines.runner import runner_alive, start_runner
from lab.pipelines.runs import (
    CANCELED,
    FAILED,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    PipelineRun,
    finish_run,
    get_run,
    list_runs,
    update_run,
)
from lab.workspace import Workspace

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENT_RUNS = 1
DEFAULT_POLL_SECONDS = 0.5
INTERRUPTED_MESSAGE = (
    "interrupted: the runner process (pid {pid}) ended without recording an end of the run; "
    "trigger the pipeline again"
)


class Dispatcher:
    """Queue of runs waiting for a runner slot, and the runners started or adopted by this process."""

    def __init__(
        self,
        workspace: Workspace,
        max_concurrent_runs: int = DEFAULT_MAX_CONCURRENT_RUNS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ):
        if max_concurrent_runs < 1:
            raise ValueError(f"max_concurrent_runs must be at least 1, got {max_concurrent_runs}")
        self.workspace = workspace
        self.max_concurrent_runs = max_concurrent_runs
        self.poll_seconds = poll_seconds
        self._queue: deque[str] = deque()
        self._started: dict[str, subprocess.Popen] = {}
        self._adopted: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Recover the runs on disk and start the polling thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="pipeline-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; runners keep going, and the next start adopts them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for run_id, process in self._started.items():
                logger.info("endpoint stopping; run %s goes on in runner pid %d", run_id, process.pid)

    def recover(self) -> dict[str, list[str]]:
        """Queue, adopt or fail the runs left unfinished; returns the run ids by decision."""
        decisions: dict[str, list[str]] = {"resumed": [], "adopted": [], "failed": []}
        for run in list_runs(self.workspace):
            if run.status == QUEUED:
                self._queue.append(run.id)
                decisions["resumed"].append(run.id)
            elif run.status == RUNNING and run.id not in self._started:
                if runner_alive(run.data.get("runner")):
                    self._adopted[run.id] = run.data["runner"]
                    decisions["adopted"].append(run.id)
                else:
                    self._fail_interrupted(run)
                    decisions["failed"].append(run.id)
        for decision, run_ids in decisions.items():
            if run_ids:
                logger.info("recovered runs: %s %s", decision, ", ".join(run_ids))
        return decisions

    def submit(self, run: PipelineRun) -> None:
        """Queue a new run; it starts within one poll interval if a slot is free."""
        with self._lock:
            self._queue.append(run.id)
        self._wake.set()

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._started) + len(self._adopted)

    # -- polling ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                # One bad run record must not stop the dispatcher for all others.
                logger.exception("dispatcher poll failed; retrying in %.1f s", self.poll_seconds)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def poll(self) -> None:
        """Reap ended runners, then start queued runs while slots are free."""
        with self._lock:
            self._reap_started()
            self._check_adopted()
            while self._queue and len(self._started) + len(self._adopted) < self.max_concurrent_runs:
                run_id = self._queue.popleft()
                process = start_runner(self.workspace, run_id)
                if process is not None:
                    self._started[run_id] = process

    def _reap_started(self) -> None:
        for run_id, process in list(self._started.items()):
            exit_code = process.poll()
            if exit_code is None:
                continue
            del self._started[run_id]
            run = get_run(self.workspace, run_id)
            if not run.is_terminal:
                # The runner died without recording an end (killed, or crashed itself).
                status = CANCELED if run.data["cancel_requested"] else FAILED
                message = f"the runner process exited with code {exit_code} before the run ended"
                update_run(self.workspace, run_id, lambda data: _finish_if_open(data, status, message))
            logger.info("run %s ended: %s", run_id, get_run(self.workspace, run_id).status)

    def _check_adopted(self) -> None:
        for run_id, runner in list(self._adopted.items()):
            if runner_alive(runner):
                continue
            del self._adopted[run_id]
            run = get_run(self.workspace, run_id)
            if not run.is_terminal:
                self._fail_interrupted(run)
            logger.info("adopted run %s ended: %s", run_id, get_run(self.workspace, run_id).status)

    def _fail_interrupted(self, run: PipelineRun) -> None:
        pid = (run.data.get("runner") or {}).get("pid", "unknown")
        message = INTERRUPTED_MESSAGE.format(pid=pid)
        status = CANCELED if run.data["cancel_requested"] else FAILED
        update_run(self.workspace, run.id, lambda data: _finish_if_open(data, status, message))
        logger.warning("run %s marked %s: %s", run.id, status, message)


def _finish_if_open(data: dict, status: str, message: str) -> None:
    if data["status"] not in TERMINAL_STATES:
        finish_run(data, status, message)
