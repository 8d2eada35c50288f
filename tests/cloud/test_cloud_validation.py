"""Input checks of `lab cloud`: config.json forms, and dry runs that reject what a real run would.

Each case here was once accepted by a dry run, or ended in a traceback, although a real run
fails on it. The checks run without the SDK; the ``sdk`` cases compare with azureml-core itself.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud.errors import CloudError
from cloud.models import parse_model_ref
from cloud.settings import AutoMLSettings, describe_minutes
from cloud.workspace import read_config

SUBSCRIPTION = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
SCOPE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-scope/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws-scope"
)
SP_VARIABLES = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


@pytest.fixture
def lab_cli():
    from lab.cli import cli

    return cli


def invoke(lab_cli, tmp_path, *args):
    """Run `lab cloud ARGS` in a fresh local workspace; exceptions that are not LabError propagate."""
    return CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", *args], catch_exceptions=False)


def write_config(tmp_path, document) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


# -- config.json -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[]", "array"), ('"str"', "string"), ("null", "null"), ("5", "number"), ("true", "boolean")],
)
def test_read_config_rejects_non_object(tmp_path, text, kind):
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CloudError, match=f"expected a JSON object .*, got a JSON {kind};"):
        read_config(path)


@pytest.mark.parametrize("text", ["[]", '"str"', "null"])
def test_dry_run_non_object_config(lab_cli, tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    result = invoke(lab_cli, tmp_path, "--config", str(path), "compute", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "workspace: not resolved, a real run stops here" in result.output.splitlines()[1]
    assert "expected a JSON object" in result.output


def test_command_non_object_config_one_line(lab_cli, tmp_path, sdk):
    path = tmp_path / "config.json"
    path.write_text("[]", encoding="utf-8")
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "--config", str(path),
                                          "compute"])
    assert result.exit_code == 7
    assert result.output.startswith(f"error: {path}: expected a JSON object")
    assert len(result.output.strip().splitlines()) == 1


def test_read_config_scope_form(tmp_path):
    config = read_config(write_config(tmp_path, {"Id": None, "Scope": SCOPE}))
    assert config.subscription_id == SUBSCRIPTION
    assert config.resource_group == "rg-scope"
    assert config.workspace_name == "ws-scope"


def test_read_config_scope_wins_over_keys(tmp_path):
    document = {"Scope": SCOPE, "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg-keys", "workspace_name": "ws-keys"}
    config = read_config(write_config(tmp_path, document))
    assert (config.resource_group, config.workspace_name) == ("rg-scope", "ws-scope")


def test_read_config_empty_scope_uses_keys(tmp_path):
    document = {"Scope": "", "subscription_id": SUBSCRIPTION, "resource_group": "rg-keys", "workspace_name": "ws-keys"}
    assert read_config(write_config(tmp_path, document)).workspace_name == "ws-keys"


@pytest.mark.parametrize("document", [{"Scope": SCOPE}, {"subscription_id": SUBSCRIPTION, "resource_group": "rg",
                                                          "workspace_name": "ws"}])
def test_read_config_matches_azureml_core(tmp_path, sdk, document):
    from azureml._project.project_info import get_workspace_info

    path = write_config(tmp_path, document)
    config = read_config(path)
    assert (config.subscription_id, config.resource_group, config.workspace_name) == get_workspace_info(path)


@pytest.mark.parametrize("scope", ["/subscriptions/x", f"/subscriptions/{SUBSCRIPTION}/resourceGroups//providers/"
                                   "Microsoft.MachineLearningServices/workspaces/ws", ["a"]])
def test_read_config_rejects_malformed_scope(tmp_path, scope):
    with pytest.raises(CloudError, match="invalid Scope .*; expected /subscriptions/<id>/resourceGroups/"):
        read_config(write_config(tmp_path, {"Scope": scope}))


@pytest.mark.parametrize(("value", "match"), [
    (5, "invalid subscription_id 5; expected a non-empty string"),
    (["a"], r'invalid subscription_id \["a"\]; expected a non-empty string'),
    ("not-a-guid", "invalid subscription_id 'not-a-guid'; expected a GUID"),
    ("5", "invalid subscription_id '5'; expected a GUID"),
])
def test_read_config_rejects_bad_subscription_id(tmp_path, value, match):
    document = {"subscription_id": value, "resource_group": "rg", "workspace_name": "ws"}
    with pytest.raises(CloudError, match=match):
        read_config(write_config(tmp_path, document))


def test_read_config_accepts_uppercase_guid(tmp_path):
    document = {"subscription_id": SUBSCRIPTION.upper(), "resource_group": "rg", "workspace_name": "ws"}
    assert read_config(write_config(tmp_path, document)).subscription_id == SUBSCRIPTION.upper()


def test_read_config_rejects_non_string_resource_group(tmp_path):
    document = {"subscription_id": SUBSCRIPTION, "resource_group": {"name": "rg"}, "workspace_name": "ws"}
    with pytest.raises(CloudError, match="invalid resource_group"):
        read_config(write_config(tmp_path, document))


def test_read_config_missing_path_says_not_found(tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    with pytest.raises(CloudError, match=f"config file {missing} not found; check --config or LAB_AZURE_CONFIG"):
        read_config(missing)


def test_dry_run_missing_config_not_found(lab_cli, tmp_path):
    missing = tmp_path / "nowhere" / "config.json"
    result = invoke(lab_cli, tmp_path, "--config", str(missing), "compute", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"config file {missing} not found" in result.output


# -- values a real run rejects -----------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "expected"), [
    ("bankmarketing-automl", ("bankmarketing-automl", None)),
    ("bankmarketing-automl:latest", ("bankmarketing-automl", None)),
    ("bankmarketing-automl:12", ("bankmarketing-automl", 12)),
    ("model.v2_a:1", ("model.v2_a", 1)),
])
def test_parse_model_ref_accepts(ref, expected):
    assert parse_model_ref(ref) == expected


@pytest.mark.parametrize(("ref", "match"), [
    ("bankmarketing-automl:abc", "invalid model version 'abc'"),
    ("bankmarketing-automl:0", "invalid model version '0'"),
    ("bankmarketing-automl:-1", "invalid model version '-1'"),
    ("bankmarketing-automl:", "invalid model version ''"),
    ("bankmarketing-automl:1\n", "invalid model version"),
    (":3", "invalid model reference"),
    ("bad name:1", "invalid model name in 'bad name:1'"),
])
def test_parse_model_ref_rejects(ref, match):
    with pytest.raises(CloudError, match=match):
        parse_model_ref(ref)


@pytest.mark.parametrize("command", ["deploy", "download"])
@pytest.mark.parametrize("ref", ["bankmarketing-automl:abc", "bankmarketing-automl:0"])
def test_dry_run_rejects_bad_model_ref(lab_cli, config_json, tmp_path, command, ref):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), command, "--model", ref, "--dry-run")
    assert result.exit_code == 7
    assert result.output.startswith("error: invalid model version")


@pytest.mark.parametrize("url", ["notaurl", "file:///etc/passwd", "ftp://example.test/data.csv", "https://"])
def test_dry_run_rejects_dataset_url(lab_cli, config_json, tmp_path, url):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "dataset", "--url", url, "--dry-run")
    assert result.exit_code == 7
    assert result.output.startswith(f"error: invalid dataset URL {url!r}; pass an http:// or https:// address")


def test_dry_run_accepts_http_dataset_url(lab_cli, config_json, tmp_path):
    url = "http://example.test/data.csv"
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "dataset", "--url", url, "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"url    {url}" in result.output


@pytest.mark.parametrize("label", ["", "  "])
def test_dry_run_rejects_empty_label(lab_cli, config_json, tmp_path, label):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "automl", "--label", label, "--dry-run")
    assert result.exit_code == 7
    assert result.output.startswith("error: empty label column name; pass --label")


@pytest.mark.parametrize("args", [
    ["pipeline", "status", "--run-id", ""],
    ["pipeline", "status", "--run-id", "run id with spaces"],
    ["pipeline", "publish", "--run-id", ""],
])
def test_dry_run_rejects_bad_run_id(lab_cli, config_json, tmp_path, args):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), *args, "--dry-run")
    assert result.exit_code == 7
    assert result.output.startswith("error: invalid --run-id")


@pytest.mark.parametrize(("args", "match"), [
    (["pipeline", "trigger", "--experiment", "bad name!"], "invalid trigger experiment name 'bad name!'"),
    (["pipeline", "status", "--run-id", "abc", "--experiment", "bad name!"], "invalid experiment name 'bad name!'"),
    (["automl", "--experiment", "-starts-with-dash"], "invalid experiment name '-starts-with-dash'"),
    (["pipeline", "create", "--pipeline-experiment", "a/b"], "invalid pipeline experiment name 'a/b'"),
    (["automl", "--model-name", "best model"], "invalid model name 'best model'"),
])
def test_dry_run_rejects_bad_names(lab_cli, config_json, tmp_path, args, match):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), *args, "--dry-run")
    assert result.exit_code == 7
    assert result.output.startswith(f"error: {match}; use ")


def test_experiment_name_matches_azureml_core(sdk):
    from azureml._base_sdk_common.common import _valid_experiment_name

    from cloud.settings import EXPERIMENT_NAME_RE

    for name in ["pipeline-rest-endpoint", "a", "A_1-b", "x" * 255, "x" * 256, "bad name!", "-a", "_a", ""]:
        assert bool(EXPERIMENT_NAME_RE.fullmatch(name)) == bool(_valid_experiment_name(name)), name


def test_timeout_upper_bound_is_automl_maximum():
    assert AutoMLSettings(experiment_timeout_minutes=525600).experiment_timeout_minutes == 525600
    with pytest.raises(CloudError, match="invalid experiment timeout 525601 min; AutoML needs at least 15 and at most"):
        AutoMLSettings(experiment_timeout_minutes=525601)


def test_timeout_bounds_match_automl_core(sdk):
    from azureml.automl.core.automl_base_settings import AutoMLBaseSettings

    from cloud.settings import MAX_TIMEOUT_MINUTES, MIN_TIMEOUT_MINUTES

    assert MIN_TIMEOUT_MINUTES == AutoMLBaseSettings.MIN_EXPTIMEOUT_MINUTES
    assert MAX_TIMEOUT_MINUTES == AutoMLBaseSettings.MAXIMUM_EXPERIMENT_TIMEOUT_MINUTES


@pytest.mark.parametrize(("minutes", "text"), [
    (20, "20 min"), (180, "180 min (3.0 h)"), (100000, "100000 min (69.4 days)"),
])
def test_describe_minutes(minutes, text):
    assert describe_minutes(minutes) == text


def test_dry_run_states_long_timeout_in_days(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "automl", "--timeout", "100000", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "for up to 100000 min (69.4 days) of search" in result.output


# -- warnings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["automl"], ["pipeline", "create"]])
def test_dry_run_warns_max_concurrent_above_nodes(lab_cli, config_json, tmp_path, command):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), *command, "--max-concurrent", "10",
                    "--max-nodes", "4", "--dry-run")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: --max-concurrent 10 exceeds --max-nodes 4: at most 4 child runs")


def test_dry_run_without_concurrency_warning(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "automl", "--max-concurrent", "4", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output


def test_dry_run_warns_service_principal_without_variables(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "--auth", "service-principal", "compute",
                    "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "warning: --auth service-principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET in the "
        "environment; a real run stops here"
    )


def test_dry_run_names_missing_secret(lab_cli, config_json, tmp_path, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111")
    monkeypatch.setenv("AZURE_CLIENT_ID", "22222222-2222-2222-2222-222222222222")
    monkeypatch.setenv("LAB_AZURE_AUTH", "service-principal")
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "compute", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "warning: --auth service-principal needs AZURE_CLIENT_SECRET in the environment" in result.output


def test_dry_run_service_principal_no_warning(lab_cli, config_json, tmp_path, monkeypatch):
    for name in SP_VARIABLES:
        monkeypatch.setenv(name, "set-for-the-test")
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "--auth", "service-principal", "compute",
                    "--dry-run")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output


# -- options and output -------------------------------------------------------------------------------


def test_download_overwrite_needs_to(lab_cli, config_json, tmp_path):
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "--config", str(config_json),
                                          "download", "--overwrite", "--dry-run"])
    assert result.exit_code == 2
    assert "--overwrite works only with --to" in result.output


def test_download_overwrite_with_to_is_accepted(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "download", "--to", "out", "--overwrite",
                    "--dry-run")
    assert result.exit_code == 0, result.output


def test_trigger_dry_run_prints_body_as_json(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "pipeline", "trigger", "--param",
                    "max_iterations=3", "--param", "note=it's \"quoted\"", "--dry-run")
    assert result.exit_code == 0, result.output
    body_line = next(line for line in result.output.splitlines() if line.strip().startswith("body"))
    body = json.loads(body_line.strip().removeprefix("body").strip())
    assert body == {"ExperimentName": "pipeline-rest-endpoint",
                    "ParameterAssignments": {"max_iterations": "3", "note": "it's \"quoted\""}}


def test_download_dry_run_lists_every_file(lab_cli, config_json, tmp_path):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), "download", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "files  model.pkl, score.py, conda_env.yml, Dockerfile, manifest.json" in result.output


@pytest.mark.parametrize("option", ["--timeout", "--timeout-minutes"])
@pytest.mark.parametrize("command", [["automl"], ["pipeline", "create"]])
def test_timeout_option_and_alias(lab_cli, config_json, tmp_path, option, command):
    result = invoke(lab_cli, tmp_path, "--config", str(config_json), *command, option, "30", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "experiment_timeout_minutes  30" in result.output


def test_timeout_help_says_minutes_and_alias(lab_cli, tmp_path):
    result = invoke(lab_cli, tmp_path, "automl", "--help")
    assert "--timeout, --timeout-minutes INTEGER" in result.output
    assert "Experiment timeout in minutes" in " ".join(result.output.split())


def test_pipeline_experiment_help_fits_each_command(lab_cli, tmp_path):
    create_help = " ".join(invoke(lab_cli, tmp_path, "pipeline", "create", "--help").output.split())
    publish_help = " ".join(invoke(lab_cli, tmp_path, "pipeline", "publish", "--help").output.split())
    trigger_help = invoke(lab_cli, tmp_path, "pipeline", "trigger", "--help").output
    assert "Experiment that the pipeline run is submitted to." in create_help
    assert "Experiment of the pipeline run to publish" in publish_help
    assert "--pipeline-experiment" not in trigger_help


@pytest.mark.parametrize("option", ["--experiment", "--model-name"])
def test_pipeline_create_has_no_automl_only_option(lab_cli, tmp_path, option):
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "pipeline", "create", option,
                                          "x", "--dry-run"])
    assert result.exit_code == 2
    assert f"No such option '{option}'" in result.output


def test_primary_metric_help_lists_every_metric(lab_cli, tmp_path):
    from cloud.settings import PRIMARY_METRICS

    help_text = " ".join(invoke(lab_cli, tmp_path, "automl", "--help").output.split())
    for metric in PRIMARY_METRICS:
        assert metric in help_text


def test_real_run_warns_before_it_stops(lab_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(lab_cli, ["--workspace", str(tmp_path / "ws"), "cloud", "automl", "--max-concurrent",
                                          "10"])
    assert result.exit_code == 7
    lines = result.stderr.splitlines()
    assert lines[0].startswith("warning: --max-concurrent 10 exceeds --max-nodes 4")
    assert lines[1].startswith("error: ")
