"""`lab cloud` through click's CliRunner: dry runs of every command, config.json lookup, error exits."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cloud.workspace import find_config, read_config
from cloud.errors import CloudError

SDK_INSTALLED = importlib.util.find_spec("azureml") is not None and importlib.util.find_spec("azureml.core") is not None


@pytest.fixture
def lab_cli():
    from lab.cli import cli

    return cli


def run_lab(lab_cli, tmp_path, *args):
    runner = CliRunner()
    return runner.invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", *args], catch_exceptions=False)


def test_find_config_walks_up_to_azureml_folder(config_json, tmp_path):
    nested = config_json.parent.parent / "notebooks" / "part1"
    nested.mkdir(parents=True)
    assert find_config(nested) == config_json


def test_read_config_fields(config_json):
    config = read_config(config_json)
    assert config.workspace_name == "ws-lab-test"
    assert config.resource_group == "rg-lab-test"
    assert config.subscription_id == "00000000-0000-0000-0000-000000000000"


def test_read_config_missing_names_fix(tmp_path):
    with pytest.raises(CloudError, match=r"no config.json in .*; download it from Azure ML studio"):
        read_config(tmp_path)


def test_read_config_incomplete(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subscription_id": "s"}), encoding="utf-8")
    with pytest.raises(CloudError, match="missing resource_group, workspace_name"):
        read_config(path)


def test_read_config_not_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{subscription", encoding="utf-8")
    with pytest.raises(CloudError, match="not a readable JSON file"):
        read_config(path)


DRY_RUNS = [
    (["compute"], ["would create or reuse AmlCompute cluster 'automl-cluster'", "vm_size", "STANDARD_D2_V2",
                   "max_nodes", "idle_seconds_before_scaledown  1800", "billed per node-hour"]),
    (["dataset"], ["would register or reuse tabular dataset 'bankmarketing'", "bankmarketing_train.csv"]),
    (["automl", "--cv", "5", "--timeout-minutes", "30"],
     ["would submit or reuse AutoML run 'automl-bankmarketing'", "primary_metric              AUC_weighted",
      "experiment_timeout_minutes  30", "max_concurrent_iterations   5", "n_cross_validations         5",
      "enable_early_stopping       True", "featurization               auto", "would register or reuse model"]),
    (["deploy", "--model", "bankmarketing-automl:3"],
     ["would create or reuse ACI web service 'bankmarketing-service'", "bankmarketing-automl:3",
      "auth_enabled         True", "enable_app_insights  True", "cpu_cores            1.0", "billed per second"]),
    (["deploy", "--replace", "--no-app-insights"], ["would replace ACI web service", "enable_app_insights  False"]),
    (["app-insights", "--service", "svc-1"], ["would update ACI web service 'svc-1'", "enable_app_insights  True"]),
    (["service"], ["would read state and keys of ACI web service 'bankmarketing-service'"]),
    (["logs", "--tail", "50"], ["would read logs of ACI web service 'bankmarketing-service'", "tail  50"]),
    (["swagger"], ["would download swagger of ACI web service", "swagger.json"]),
    (["endpoint"], ["would call ACI web service 'bankmarketing-service'", "POST /score"]),
    (["benchmark", "-n", "20", "-c", "2"], ["would load-test ACI web service", "requests     20", "concurrency  2"]),
    (["download", "--to", "downloaded"], ["would download registered model 'bankmarketing-automl'", "into   downloaded"]),
    (["cleanup"], ["would delete ACI web service 'bankmarketing-service'", "would update AmlCompute cluster",
                   "min_nodes  0"]),
    (["pipeline", "create"], ["would build and submit or reuse pipeline run 'pipeline-bankmarketing'",
                              "AutoMLStep automl_module (allow_reuse=True)", "metrics_data (Metrics), model_data (Model)"]),
    (["pipeline", "publish"], ["would publish or reuse published pipeline 'Bankmarketing Train'", "version      1.0"]),
    (["pipeline", "trigger", "--param", "max_iterations=3"],
     ["would trigger published pipeline 'Bankmarketing Train'",
      '{"ExperimentName": "pipeline-rest-endpoint", "ParameterAssignments": {"max_iterations": "3"}}']),
    (["pipeline", "status", "--run-id", "abc"], ["would read status of pipeline run 'abc'"]),
]


@pytest.mark.parametrize(("args", "expected"), DRY_RUNS, ids=[" ".join(args) for args, _ in DRY_RUNS])
def test_dry_run_prints_plan(lab_cli, config_json, tmp_path, args, expected):
    result = run_lab(lab_cli, tmp_path, "--config", str(config_json), *args, "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "dry run: nothing is sent to Azure"
    assert "workspace ws-lab-test (resource group rg-lab-test" in lines[1]
    for fragment in expected:
        assert fragment in result.output


def test_dry_run_without_config_says_so(lab_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_lab(lab_cli, tmp_path, "compute", "--dry-run")
    assert result.exit_code == 0
    assert "workspace: not resolved, a real run stops here: no config.json" in result.output


def test_dry_run_rejects_invalid_settings(lab_cli, config_json, tmp_path):
    result = CliRunner().invoke(
        lab_cli, ["--workspace", str(tmp_path), "cloud", "--config", str(config_json), "compute", "--min-nodes", "5",
                  "--dry-run"],
    )
    assert result.exit_code == 7
    assert "invalid node range min 5, max 4" in result.output


def test_trigger_rejects_malformed_param(lab_cli, config_json, tmp_path):
    result = CliRunner().invoke(
        lab_cli, ["cloud", "--config", str(config_json), "pipeline", "trigger", "--param", "novalue", "--dry-run"]
    )
    assert result.exit_code == 2
    assert "use NAME=VALUE" in result.output


def test_command_without_config_exits_with_one_line(lab_cli, tmp_path, monkeypatch, sdk):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "compute"])
    assert result.exit_code == 7
    assert result.output.startswith("error: no config.json in ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(SDK_INSTALLED, reason="checks the message shown when the cloud extra is missing")
def test_command_without_sdk_names_extra(lab_cli, config_json, tmp_path):
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "--config", str(config_json),
                                          "compute"])
    assert result.exit_code == 7
    assert result.output == (
        "error: the Azure ML SDK is not installed; install the cloud extra from the project's clone: "
        "pip install -e '.[cloud]'\n"
    )


def test_cloud_commands_and_dry_run_import_no_sdk(config_json, tmp_path):
    """`lab` starts, and a dry run completes, without importing any azureml module."""
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from lab.cli import cli\n"
        f"result = CliRunner().invoke(cli, ['--workspace', {str(tmp_path / 'ws')!r}, 'cloud', '--config', "
        f"{str(config_json)!r}, 'automl', '--dry-run'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(name for name in sys.modules if name == 'azureml' or name.startswith('azureml.')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_interrupt_while_following_says_run_continues():
    from lab.cli.commands_cloud import _keeps_running_on_interrupt
    from lab.errors import Interrupted

    with pytest.raises(Interrupted) as caught:
        with _keeps_running_on_interrupt("AutoML run AutoML_1", "rerun the same `lab cloud automl` to follow it"):
            raise KeyboardInterrupt
    message = str(caught.value)
    assert "AutoML run AutoML_1 keeps running in Azure" in message
    assert "rerun the same `lab cloud automl`" in message
    assert caught.value.exit_code == 130
