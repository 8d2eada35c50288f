"""Settings validation and the values the dry runs and the SDK objects are built from."""

from __future__ import annotations

import pytest

from cloud.errors import CloudError
from cloud.settings import AutoMLSettings, ComputeSettings, DeploySettings, PipelineSettings


def test_automl_defaults_are_the_exercise_settings():
    assert AutoMLSettings().automl_config_kwargs() == {
        "task": "classification",
        "label_column_name": "y",
        "primary_metric": "AUC_weighted",
        "experiment_timeout_minutes": 20,
        "max_concurrent_iterations": 5,
        "enable_early_stopping": True,
        "featurization": "auto",
    }


def test_automl_cross_validation_is_optional():
    assert AutoMLSettings(n_cross_validations=5).automl_config_kwargs()["n_cross_validations"] == 5


def test_fingerprint_changes_with_settings_and_dataset():
    base = AutoMLSettings().fingerprint("bankmarketing:1", "automl-cluster")
    assert base == AutoMLSettings().fingerprint("bankmarketing:1", "automl-cluster")
    assert base != AutoMLSettings().fingerprint("bankmarketing:2", "automl-cluster")
    assert base != AutoMLSettings(experiment_timeout_minutes=30).fingerprint("bankmarketing:1", "automl-cluster")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"primary_metric": "f1"}, "invalid primary metric 'f1'"),
        ({"experiment_timeout_minutes": 10}, "at least 15"),
        ({"max_concurrent_iterations": 0}, "max concurrent"),
        ({"n_cross_validations": 1}, "cross-validation count 1"),
        ({"featurization": "custom"}, "featurization 'custom'"),
    ],
)
def test_automl_settings_reject(kwargs, match):
    with pytest.raises(CloudError, match=match):
        AutoMLSettings(**kwargs)


def test_compute_defaults():
    settings = ComputeSettings()
    assert (settings.vm_size, settings.min_nodes, settings.max_nodes) == ("STANDARD_D2_V2", 0, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "1cluster"}, "invalid cluster name"),
        ({"name": "a-name-far-too-long-for-azure"}, "invalid cluster name"),
        ({"min_nodes": 3, "max_nodes": 2}, "min 3, max 2"),
        ({"max_nodes": 0}, "max 0"),
        ({"idle_seconds_before_scaledown": -1}, "idle-seconds -1"),
        ({"vm_priority": "spot"}, "VM priority 'spot'"),
    ],
)
def test_compute_settings_reject(kwargs, match):
    with pytest.raises(CloudError, match=match):
        ComputeSettings(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"service_name": "Bank_Service"}, "invalid service name"),
        ({"service_name": "ab"}, "invalid service name"),
        ({"service_name": "service-"}, "invalid service name"),
        ({"cpu_cores": 8}, "invalid ACI size"),
        ({"memory_gb": 0}, "invalid ACI size"),
    ],
)
def test_deploy_settings_reject(kwargs, match):
    with pytest.raises(CloudError, match=match):
        DeploySettings(**kwargs)


def test_deploy_defaults_enable_auth_and_app_insights():
    settings = DeploySettings()
    assert settings.auth_enabled is True
    assert settings.enable_app_insights is True


def test_pipeline_defaults_match_exercise():
    settings = PipelineSettings()
    assert settings.step_name == "automl_module"
    assert settings.published_name == "Bankmarketing Train"
    assert settings.version == "1.0"
    assert settings.trigger_experiment == "pipeline-rest-endpoint"
    assert settings.allow_reuse is True
