"""SDK v1 objects that build offline: AutoMLConfig, compute, ACI and inference configuration, pipeline step.

The training data is a ``TabularDataset`` on a closed loopback port, built without validation or
type inference, so nothing is read. What these tests do not cover: anything that needs a live
workspace (``Pipeline(workspace, ...)``, ``Model.deploy``, submitting runs).
"""

from __future__ import annotations

import pytest

from cloud import automl, compute, dataset, deploy, pipeline
from cloud.settings import AutoMLSettings, ComputeSettings, DeploySettings, PipelineSettings


@pytest.fixture
def training_data(sdk, no_network):
    return dataset.tabular_dataset_from_url(no_network + "/bankmarketing_train.csv", validate=False)


def test_automl_config_carries_exercise_settings(training_data):
    config = automl.build_automl_config(AutoMLSettings(n_cross_validations=5), training_data, "automl-cluster")
    settings = config.user_settings
    assert settings["task_type"] == "classification"
    assert settings["label_column_name"] == "y"
    assert settings["primary_metric"] == "AUC_weighted"
    assert settings["experiment_timeout_minutes"] == 20
    assert settings["max_concurrent_iterations"] == 5
    assert settings["enable_early_stopping"] is True
    assert settings["featurization"] == "auto"
    assert settings["n_cross_validations"] == 5
    assert settings["compute_target"] == "automl-cluster"


def test_automl_config_without_cross_validation(training_data):
    config = automl.build_automl_config(AutoMLSettings(), training_data, "automl-cluster")
    assert config.user_settings["n_cross_validations"] is None


def test_provisioning_configuration(sdk):
    config = compute.provisioning_configuration(ComputeSettings(max_nodes=4, idle_seconds_before_scaledown=600))
    assert config.vm_size == "STANDARD_D2_V2"
    assert config.scale_settings.minimum_node_count == 0
    assert config.scale_settings.maximum_node_count == 4
    assert config.scale_settings.idle_seconds_before_scaledown == 600
    assert config.vm_priority == "dedicated"


def test_aci_deploy_configuration_has_auth_and_app_insights(sdk):
    config = deploy.deploy_configuration(DeploySettings(cpu_cores=1, memory_gb=1))
    assert config.auth_enabled is True
    assert config.enable_app_insights is True
    assert config.cpu_cores == 1
    assert config.memory_gb == 1


def test_aci_deploy_configuration_without_app_insights(sdk):
    config = deploy.deploy_configuration(DeploySettings(enable_app_insights=False))
    assert config.enable_app_insights is False


def test_inference_config_uses_scoring_file(sdk, tmp_path):
    from azureml.core import Environment

    entry_script = tmp_path / "score.py"
    entry_script.write_text("def init():\n    pass\n\ndef run(data):\n    return data\n", encoding="utf-8")
    config = deploy.inference_config(entry_script, Environment("AzureML-AutoML"))
    assert config.entry_script == str(entry_script)
    assert config.environment.name == "AzureML-AutoML"


def test_automl_step_and_outputs(training_data):
    step, metrics_data, model_data = pipeline.build_automl_step(
        AutoMLSettings(), PipelineSettings(), training_data, "automl-cluster"
    )
    assert step.name == "automl_module"
    assert step._allow_reuse is True  # no public accessor in azureml-pipeline-steps 1.62
    assert [output.name for output in step._outputs] == ["metrics_data", "model_data"]
    assert metrics_data._training_output.type == "Metrics"
    assert model_data._training_output.type == "Model"
    assert metrics_data._pipeline_output_name == "metrics_output"
    assert model_data._pipeline_output_name == "best_model_output"
    assert metrics_data.datastore is None  # the workspace's default datastore, filled in when the pipeline is built


def test_automl_step_without_reuse(training_data):
    step, _, _ = pipeline.build_automl_step(
        AutoMLSettings(), PipelineSettings(allow_reuse=False), training_data, "automl-cluster"
    )
    assert step._allow_reuse is False


def test_service_principal_auth_needs_env(sdk):
    from cloud.errors import CloudError
    from cloud.workspace import make_auth

    with pytest.raises(CloudError, match="AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"):
        make_auth("service-principal")


def test_service_principal_auth_from_env(sdk, monkeypatch):
    from azureml.core.authentication import ServicePrincipalAuthentication

    from cloud.workspace import make_auth

    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-00000000000a")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000000b")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-a-real-secret")
    auth = make_auth("service-principal")
    assert isinstance(auth, ServicePrincipalAuthentication)


def test_unknown_auth_method(sdk):
    from cloud.errors import CloudError
    from cloud.workspace import make_auth

    with pytest.raises(CloudError, match="unknown auth method 'token'"):
        make_auth("token")
