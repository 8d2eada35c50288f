"""The local pipeline endpoint end to end on loopback: real training runs, real HTTP, real processes.

Training uses a small stratified sample of the training file and a budget of 3 seconds
(``timeout_minutes=0.05``). The first candidate may run past the budget, so one run takes from
several seconds to about a minute on a busy 2-core machine (an estimate from runs during development).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import joblib
import pandas as pd
import pytest
from click.testing import CliRunner

from lab.cli import cli
from lab.data import register_dataset
from lab.pipelines import auth, client, definition, publish, runs
from lab.pipelines.server import PipelineServer
from lab.workspace import Workspace

pytestmark = pytest.mark.e2e

SEED = 0
SAMPLE_ROWS = 400
BUDGET_MINUTES = 0.05
RUN_TIMEOUT_SECONDS = 240
LONG_BUDGET_MINUTES = 10.0
# SIGTERM reaches the step at once, but Python acts on it only between two statements, so it can
# wait for one fold's fit. The bound is generous for 400 rows and far below LONG_BUDGET_MINUTES.
ORPHAN_STOP_SECONDS = 120
POLL_SECONDS = 0.2


@pytest.fixture(scope="module")
def tiny_csv(train_frame, tmp_path_factory):
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(train_frame, train_size=SAMPLE_ROWS, stratify=train_frame["y"], random_state=SEED)
    path = tmp_path_factory.mktemp("pipeline-data") / "bankmarketing_tiny.csv"
    sample.to_csv(path, index=False)
    return path


def make_workspace(folder, tiny_csv) -> tuple[Workspace, publish.PublishedPipeline, str]:
    workspace = Workspace(folder)
    register_dataset(workspace, tiny_csv, name="bankmarketing")
    created = definition.create_pipeline(workspace, "bankmarketing", timeout_minutes=BUDGET_MINUTES)
    published = publish.publish_pipeline(workspace, created.ref, "Bankmarketing Train", "1.0")
    return workspace, published, auth.get_or_create_token(workspace)


@pytest.fixture(scope="module")
def lab_env(tiny_csv, tmp_path_factory):
    """A workspace with a published pipeline, and its endpoint on a free loopback port."""
    workspace, published, token = make_workspace(tmp_path_factory.mktemp("pipeline-ws"), tiny_csv)
    server = PipelineServer(workspace, port=0, max_concurrent_runs=2, poll_seconds=POLL_SECONDS).start()
    yield workspace, published, token, published.endpoint(server.url)
    server.stop()
    cancel_unfinished(workspace)


def cancel_unfinished(workspace: Workspace) -> None:
    """Stop runners that a failed test left behind, so no process outlives the session."""
    for run in runs.list_runs(workspace):
        if not run.is_terminal:
            try:
                runs_cancel(workspace, run.id)
                run.wait(timeout_seconds=30)
            except Exception:
                pass


def runs_cancel(workspace, run_id):
    from lab.pipelines.runner import cancel_run

    return cancel_run(workspace, run_id)


def wait_for(predicate, description: str, timeout_seconds: float = RUN_TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"timed out after {timeout_seconds} s waiting for {description}")


def model_versions(workspace: Workspace) -> dict[str, str]:
    """Map each registered model version to the sha256 of its manifest and model file."""
    found = {}
    for asset in workspace.list("models"):
        digest = hashlib.sha256()
        for name in ("manifest.json", "model.pkl"):
            digest.update((asset.path / name).read_bytes())
        found[asset.ref] = digest.hexdigest()
    return found


@pytest.fixture(scope="module")
def completed_run(lab_env):
    workspace, published, token, endpoint = lab_env
    answer = client.submit(endpoint, token, "pipeline-rest-endpoint",
                           {"timeout_minutes": BUDGET_MINUTES, "primary_metric": "accuracy"})
    status = client.wait_for_run(endpoint, token, "pipeline-rest-endpoint", answer["Id"],
                                 timeout_seconds=RUN_TIMEOUT_SECONDS, poll_seconds=POLL_SECONDS)
    return answer, status


def test_trigger_completes_over_rest(completed_run):
    answer, status = completed_run
    assert answer["Status"] == "Queued"
    assert status["runId"] == answer["Id"]
    assert status["status"] == "Completed", status.get("error")
    assert status["parameters"] == {"timeout_minutes": BUDGET_MINUTES, "primary_metric": "accuracy"}


def test_run_records_step_timings(lab_env, completed_run):
    workspace = lab_env[0]
    run = runs.get_run(workspace, completed_run[0]["Id"])
    assert [step["name"] for step in run.data["steps"]] == ["automl_module", "register_model"]
    for step in run.data["steps"]:
        assert step["status"] == runs.COMPLETED
        assert step["duration_seconds"] > 0
        assert step["started_at"] <= step["ended_at"]


def test_run_registers_model(lab_env, completed_run):
    workspace = lab_env[0]
    run = runs.get_run(workspace, completed_run[0]["Id"])
    model = workspace.get("models", run.data["registered_model"])
    assert model.manifest["pipeline_run_id"] == run.id
    assert model.manifest["primary_metric"] == "accuracy"
    assert model.manifest["dataset"] == "bankmarketing:1"


def test_download_metrics_output(lab_env, completed_run, tmp_path):
    workspace = lab_env[0]
    run = runs.get_run(workspace, completed_run[0]["Id"])
    folder = run.get_pipeline_output("metrics_data").download(tmp_path)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["primary_metric"] == "accuracy"
    assert metrics["pipeline_run_id"] == run.id
    assert metrics["best_child_run_id"] in metrics["child_runs"]
    assert 0.0 <= metrics["best_metrics"]["accuracy"] <= 1.0


def test_metrics_list_every_child_run(lab_env, completed_run, tmp_path):
    workspace = lab_env[0]
    run = runs.get_run(workspace, completed_run[0]["Id"])
    metrics = json.loads((run.get_pipeline_output("metrics_data").download(tmp_path) / "metrics.json").read_text())
    listed = {child["child_run_id"]: child for child in metrics["all_child_runs"]}
    candidates = [child for child in listed.values() if not child["algorithm"].endswith("Ensemble")]
    assert len(candidates) == metrics["iterations_run"]
    assert set(metrics["child_runs"]) <= set(listed)
    for child_run_id in metrics["child_runs"]:
        assert listed[child_run_id]["status"] == "Completed"


def test_docs_python_example_runs(lab_env, completed_run, tmp_path, monkeypatch):
    """The Python example in docs/pipelines.md runs as written, in a folder whose .lab is the workspace."""
    workspace = lab_env[0]
    docs = (Path(__file__).parents[1] / "docs" / "pipelines.md").read_text()
    example = re.search(r"```python\n(.*?)```", docs, re.DOTALL).group(1)
    (tmp_path / ".lab").symlink_to(workspace.root)
    monkeypatch.chdir(tmp_path)

    exec(compile(example, "docs/pipelines.md", "exec"), {"run_id": completed_run[0]["Id"]})

    metrics = json.loads((tmp_path / "out" / "metrics_data" / "metrics.json").read_text())
    assert metrics["pipeline_run_id"] == completed_run[0]["Id"]


def test_download_model_output_predicts(lab_env, completed_run, tmp_path):
    workspace = lab_env[0]
    run = runs.get_run(workspace, completed_run[0]["Id"])
    folder = run.get_pipeline_output("model_data").download(tmp_path)
    model = joblib.load(folder / "model.pkl")
    records = json.loads((folder / "sample.json").read_text())["data"]
    predictions = model.predict(pd.DataFrame(records))
    assert len(predictions) == len(records)
    assert set(map(str, predictions)) <= {"yes", "no"}


def test_download_into_existing_folder_rejected(lab_env, completed_run, tmp_path):
    workspace = lab_env[0]
    output = runs.get_run(workspace, completed_run[0]["Id"]).get_pipeline_output("metrics_data")
    output.download(tmp_path)
    with pytest.raises(runs.PipelineError, match="already exists"):
        output.download(tmp_path)


def test_cli_shows_and_downloads_run(lab_env, completed_run, tmp_path):
    workspace = lab_env[0]
    run_id = completed_run[0]["Id"]
    runner = CliRunner()
    base = ["--workspace", str(workspace.root), "pipeline"]

    status = runner.invoke(cli, [*base, "run-status", run_id, "--wait"])
    assert status.exit_code == 0, status.output
    assert f"run {run_id}: completed" in status.output
    assert "step automl_module" in status.output

    listing = runner.invoke(cli, [*base, "runs"])
    assert run_id in listing.output

    download = runner.invoke(cli, [*base, "download", run_id, "--output", "model_data", "--to", str(tmp_path)])
    assert download.exit_code == 0, download.output
    assert (tmp_path / "model_data" / "model.pkl").is_file()


def test_concurrent_triggers_complete(lab_env):
    workspace, published, token, endpoint = lab_env
    before = model_versions(workspace)
    answers: list[dict] = []

    def trigger(experiment: str) -> None:
        answers.append(client.submit(endpoint, token, experiment, {"timeout_minutes": BUDGET_MINUTES}))

    threads = [threading.Thread(target=trigger, args=(f"concurrent-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 2
    assert answers[0]["Id"] != answers[1]["Id"]
    finished = [runs.get_run(workspace, answer["Id"]).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS) for answer in answers]
    assert [run.status for run in finished] == [runs.COMPLETED, runs.COMPLETED]
    registered = {run.data["registered_model"] for run in finished}
    assert len(registered) == 2
    after = model_versions(workspace)
    assert set(after) - set(before) == registered
    assert {ref: after[ref] for ref in before} == before


def test_step_error_fails_run_and_keeps_models(lab_env, tiny_csv):
    workspace, _, token, endpoint = lab_env
    broken = register_dataset(workspace, tiny_csv, name="broken")
    created = definition.create_pipeline(workspace, broken.ref, name="broken-train", timeout_minutes=BUDGET_MINUTES)
    published = publish.publish_pipeline(workspace, created.ref, "Broken Train")
    (broken.path / "data.csv").unlink()
    before = model_versions(workspace)

    answer = client.submit(published.endpoint(endpoint.split("/pipelines/")[0]), token, "broken")
    run = runs.get_run(workspace, answer["Id"]).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)

    assert run.status == runs.FAILED
    assert run.step("automl_module")["status"] == runs.FAILED
    assert "data.csv: file not found" in run.step("automl_module")["error"]
    assert run.step("register_model")["status"] == runs.CANCELED
    assert run.data["error"].startswith("step automl_module failed: ")
    assert model_versions(workspace) == before
    with pytest.raises(runs.PipelineError, match="not available"):
        run.get_pipeline_output("model_data")


def test_killed_step_fails_run_and_keeps_models(lab_env):
    workspace, _, token, endpoint = lab_env
    before = model_versions(workspace)
    answer = client.submit(endpoint, token, "killed", {"timeout_minutes": BUDGET_MINUTES})

    def step_pid():
        return runs.get_run(workspace, answer["Id"]).step("automl_module").get("pid")

    os.kill(wait_for(step_pid, "the training step to start"), signal.SIGKILL)
    run = runs.get_run(workspace, answer["Id"]).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)

    assert run.status == runs.FAILED
    assert run.step("automl_module")["error"].startswith("the step process was killed by SIGKILL")
    assert run.step("automl_module")["exit_code"] == -signal.SIGKILL
    assert model_versions(workspace) == before


def test_killed_runner_stops_its_step(lab_env):
    """kill -9 of the runner alone: its step must stop instead of training on in the background."""
    workspace, _, token, endpoint = lab_env
    before = model_versions(workspace)
    # A budget far longer than the wait below, so only the runner's death can end the step in time.
    answer = client.submit(endpoint, token, "killed-runner", {"timeout_minutes": LONG_BUDGET_MINUTES})
    step_pid = wait_for(lambda: runs.get_run(workspace, answer["Id"]).step("automl_module").get("pid"),
                        "the training step to start")
    run = runs.get_run(workspace, answer["Id"])
    log_path = run.path / "steps" / "automl_module" / "log.txt"
    wait_for(lambda: "training on dataset" in log_path.read_text(), "the step to start training")

    os.kill(run.data["runner"]["pid"], signal.SIGKILL)
    wait_for(lambda: not _running(step_pid), "the step to stop after its runner died", ORPHAN_STOP_SECONDS)
    run = runs.get_run(workspace, answer["Id"]).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)

    assert run.status == runs.FAILED
    assert "step stopped by SIGTERM (its runner ended)" in log_path.read_text()
    assert not (log_path.parent / "result.json").exists()
    assert not (run.path / "outputs" / "model_data").exists()
    assert model_versions(workspace) == before


def test_cancel_running_step(lab_env):
    workspace, _, token, endpoint = lab_env
    before = model_versions(workspace)
    answer = client.submit(endpoint, token, "cancel-running", {"timeout_minutes": BUDGET_MINUTES})
    wait_for(lambda: runs.get_run(workspace, answer["Id"]).step("automl_module").get("pid"), "the step to start")

    assert runs_cancel(workspace, answer["Id"]) == runs.RUNNING
    run = runs.get_run(workspace, answer["Id"]).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)

    assert run.status == runs.CANCELED
    assert run.step("automl_module")["status"] == runs.CANCELED
    assert run.step("register_model")["status"] == runs.CANCELED
    assert model_versions(workspace) == before


def test_cli_trigger_and_cancel(lab_env):
    workspace, _, token, endpoint = lab_env
    runner = CliRunner()
    base = ["--workspace", str(workspace.root), "pipeline"]

    triggered = runner.invoke(cli, [*base, "trigger", "--endpoint", endpoint, "--experiment", "cli",
                                    "--param", f"timeout_minutes={BUDGET_MINUTES}"])
    assert triggered.exit_code == 0, triggered.output
    run_id = triggered.output.strip().splitlines()[-1]

    canceled = runner.invoke(cli, [*base, "cancel", run_id])
    assert canceled.exit_code == 0, canceled.output
    run = runs.get_run(workspace, run_id).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)
    assert run.status == runs.CANCELED
    assert run.data["registered_model"] is None


def test_cli_trigger_undeclared_parameter(lab_env):
    workspace, _, token, endpoint = lab_env
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "pipeline", "trigger",
                                      "--endpoint", endpoint, "--param", "learning_rate=0.1"])
    assert result.exit_code == 8
    assert "responded 400: parameter 'learning_rate' is not declared" in result.output


def test_cli_trigger_wrong_token(lab_env):
    workspace, _, token, endpoint = lab_env
    result = CliRunner().invoke(cli, ["--workspace", str(workspace.root), "pipeline", "trigger",
                                      "--endpoint", endpoint, "--token", "not-the-token"])
    assert result.exit_code == 8
    assert "responded 401: invalid bearer token" in result.output
    assert token not in result.output


def test_http_401_has_challenge(lab_env):
    import requests

    _, _, _, endpoint = lab_env
    response = requests.post(endpoint, json={"ExperimentName": "exp"}, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["message"].startswith("missing bearer token")


def test_restart_keeps_runs(tiny_csv, tmp_path):
    """A run whose runner died with the endpoint is failed; a queued run resumes; a live runner is adopted."""
    workspace, published, token = make_workspace(tmp_path / "ws", tiny_csv)

    def serve() -> tuple[PipelineServer, str]:
        server = PipelineServer(workspace, port=0, max_concurrent_runs=1, poll_seconds=POLL_SECONDS).start()
        return server, published.endpoint(server.url)

    try:
        server, endpoint = serve()
        first = client.submit(endpoint, token, "restart", {"timeout_minutes": BUDGET_MINUTES})["Id"]
        second = client.submit(endpoint, token, "restart", {"timeout_minutes": BUDGET_MINUTES})["Id"]
        runner_pid = wait_for(lambda: (runs.get_run(workspace, first).data.get("runner") or {}).get("pid"),
                              "the first run's runner")
        server.stop()
        # The machine loses the runner and its step, as in a crash: the run cannot finish.
        os.killpg(runner_pid, signal.SIGKILL)
        wait_for(lambda: not _alive(runner_pid), "the runner to exit")
        assert runs.get_run(workspace, second).status == runs.QUEUED

        server, endpoint = serve()
        failed = runs.get_run(workspace, first)
        assert failed.status == runs.FAILED
        assert failed.data["error"].startswith("interrupted: the runner process")
        wait_for(lambda: runs.get_run(workspace, second).step("automl_module").get("pid"), "the second run to start")
        server.stop()

        server, endpoint = serve()
        adopted = runs.get_run(workspace, second).wait(RUN_TIMEOUT_SECONDS, POLL_SECONDS)
        assert adopted.status == runs.COMPLETED
        listed = client.get_run_status(endpoint, token, "restart", first)
        assert listed["status"] == "Failed"
        assert [run.id for run in runs.list_runs(workspace)] == [first, second]
        server.stop()
    finally:
        cancel_unfinished(workspace)


def _running(pid: int) -> bool:
    """Return True while ``pid`` exists and is not a zombie; works for processes of any parent."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of this process counts as gone.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True
