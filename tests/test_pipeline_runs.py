"""Run records, cancellation and the dispatcher's recovery after a restart, without training.

Runs are created through the request handler; runner processes are stood in for by ``sleep``
processes that the tests start and stop themselves.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from click.testing import CliRunner

from lab.cli import cli
from lab.pipelines import auth, definition, publish, runs
from lab.pipelines.api import PipelineApi, Request
from lab.pipelines.dispatcher import Dispatcher
from lab.pipelines.errors import PipelineError
from lab.pipelines.runner import cancel_run, process_start_ticks, runner_alive
from lab.workspace import Workspace

STANDIN_SECONDS = "60"


@pytest.fixture()
def workspace(tiny_workspace) -> Workspace:
    ws = tiny_workspace
    created = definition.create_pipeline(ws, "tiny", name="train", timeout_minutes=1.0)
    publish.publish_pipeline(ws, created.ref, "Train")
    auth.get_or_create_token(ws)
    return ws


def queue_run(workspace: Workspace) -> runs.PipelineRun:
    published = publish.list_published(workspace)[0]
    token = auth.read_token(workspace)
    request = Request("POST", published.submit_path, {"Authorization": f"Bearer {token}"},
                      json.dumps({"ExperimentName": "exp"}).encode())
    response = PipelineApi(workspace, dispatcher=None).handle(request)
    assert response.status == 200, response.body
    return runs.get_run(workspace, response.body["Id"])


def mark_running(workspace: Workspace, run_id: str, pid: int) -> None:
    def change(data: dict) -> None:
        data["status"] = runs.RUNNING
        data["runner"] = {"pid": pid, "start_ticks": process_start_ticks(pid)}

    runs.update_run(workspace, run_id, change)


@pytest.fixture()
def standin():
    """A live process that plays a runner; stopped after the test."""
    process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({STANDIN_SECONDS})"])
    yield process
    process.kill()
    process.wait()


def test_cancel_queued_run(workspace):
    run = queue_run(workspace)
    assert cancel_run(workspace, run.id) == runs.CANCELED
    canceled = run.refresh()
    assert canceled.data["error"] == "canceled before it started"
    assert [step["status"] for step in canceled.data["steps"]] == [runs.CANCELED, runs.CANCELED]
    assert canceled.data["ended_at"] is not None


def test_cancel_finished_run_rejected(workspace):
    run = queue_run(workspace)
    cancel_run(workspace, run.id)
    with pytest.raises(PipelineError, match="is already canceled; nothing to cancel"):
        cancel_run(workspace, run.id)


def test_cancel_running_run_with_dead_runner(workspace):
    run = queue_run(workspace)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mark_running(workspace, run.id, dead.pid)
    assert cancel_run(workspace, run.id) == runs.CANCELED


def test_recover_resumes_queued_run(workspace):
    run = queue_run(workspace)
    decisions = Dispatcher(workspace).recover()
    assert decisions == {"resumed": [run.id], "adopted": [], "failed": []}


def test_recover_fails_run_with_dead_runner(workspace):
    run = queue_run(workspace)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mark_running(workspace, run.id, dead.pid)

    decisions = Dispatcher(workspace).recover()

    assert decisions["failed"] == [run.id]
    failed = run.refresh()
    assert failed.status == runs.FAILED
    assert failed.data["error"].startswith(f"interrupted: the runner process (pid {dead.pid}) ended")


def test_recover_adopts_live_runner(workspace, standin):
    run = queue_run(workspace)
    mark_running(workspace, run.id, standin.pid)
    dispatcher = Dispatcher(workspace)

    assert dispatcher.recover()["adopted"] == [run.id]
    dispatcher.poll()
    assert run.refresh().status == runs.RUNNING

    standin.kill()
    standin.wait()
    dispatcher.poll()
    assert run.refresh().status == runs.FAILED


def test_runner_alive_rejects_recycled_pid(standin):
    ticks = process_start_ticks(standin.pid)
    assert runner_alive({"pid": standin.pid, "start_ticks": ticks})
    assert not runner_alive({"pid": standin.pid, "start_ticks": ticks - 1})


def test_output_of_queued_run_unavailable(workspace):
    run = queue_run(workspace)
    with pytest.raises(PipelineError, match="step automl_module is queued") as caught:
        run.get_pipeline_output("metrics_data")
    assert str(caught.value).endswith(f"wait for the run with `lab pipeline run-status {run.id} --wait`")


def test_output_of_canceled_run_says_trigger_again(workspace):
    run = queue_run(workspace)
    cancel_run(workspace, run.id)
    with pytest.raises(PipelineError, match="step automl_module is canceled") as caught:
        runs.get_run(workspace, run.id).get_pipeline_output("metrics_data")
    message = str(caught.value)
    assert "the run has ended (canceled), so this output will never be written" in message
    assert message.endswith("trigger the pipeline again")
    assert "--wait" not in message


def test_cancel_unknown_run(workspace):
    unknown = "11111111-1111-1111-1111-111111111111"
    with pytest.raises(runs.RunNotFound, match=f"no pipeline run {unknown}"):
        cancel_run(workspace, unknown)
    assert not runs.run_dir(workspace, unknown).exists()


def test_cli_cancel_unknown_run(workspace):
    unknown = "11111111-1111-1111-1111-111111111111"
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "pipeline", "cancel", unknown])
    assert result.exit_code == 8
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"error: no pipeline run {unknown}" in result.output


def test_unknown_output_name(workspace):
    run = queue_run(workspace)
    with pytest.raises(PipelineError, match="has no output named 'scores'"):
        run.get_pipeline_output("scores")


def test_invalid_run_id(workspace):
    with pytest.raises(PipelineError, match="invalid run id '../x'"):
        runs.get_run(workspace, "../x")


def test_list_runs_in_creation_order(workspace):
    created = [queue_run(workspace).id for _ in range(3)]
    assert [run.id for run in runs.list_runs(workspace)] == created


def test_wait_times_out(workspace):
    run = queue_run(workspace)
    with pytest.raises(PipelineError, match="is still queued after 0.3 s and goes on") as caught:
        run.wait(timeout_seconds=0.3, poll_seconds=0.1)
    assert f"follow it with `lab pipeline run-status {run.id} --wait`" in str(caught.value)


def test_step_exits_when_runner_already_gone(workspace, tmp_path):
    """The runner can die between starting a step and the step's prctl call; the step must stop."""
    run = queue_run(workspace)
    not_the_parent = "1"
    result = subprocess.run(
        [sys.executable, "-m", "lab.pipelines.steps", "--workspace", str(workspace.root),
         "--parent-pid", not_the_parent, run.id, "automl_module"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 128 + 15
    assert "the runner (pid 1) ended before the step started; stopping" in result.stderr
    assert not (run.path / "steps" / "automl_module" / "result.json").exists()
