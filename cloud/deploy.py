"""Deploy a registered AutoML model to Azure Container Instances, and work with the service.

The service runs AutoML's own scoring file and environment from the model's run, with key
authentication and Application Insights on by default.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.workspace import atomic_write_bytes

from cloud.errors import CloudError, cause_of_details, classify, cloud_error, mask_secret, with_retry
from cloud.plan import PlannedChange
from cloud.settings import DeploySettings

logger = logging.getLogger(__name__)

ACI_COST = "billed per second for the requested vCPUs and GB of memory while the service exists, even when idle"
APP_INSIGHTS_COST = "Application Insights ingestion is billed per GB beyond the monthly free allowance"
KEYS_HINT = (
    "read the full keys in Azure ML studio (Endpoints > {name} > Consume) or in Python with "
    "AciWebservice(workspace, '{name}').get_keys(); `lab cloud endpoint` and `lab cloud benchmark` fetch them for you"
)


@dataclass(frozen=True)
class ServiceInfo:
    """State, URIs and masked keys of a deployed service; the full keys are never stored here."""

    name: str
    state: str
    scoring_uri: str | None
    swagger_uri: str | None
    primary_key_masked: str
    secondary_key_masked: str
    app_insights: bool


def plan_deploy(settings: DeploySettings, model_name: str, replace: bool) -> PlannedChange:
    return PlannedChange(
        "replace" if replace else "create or reuse",
        "ACI web service",
        settings.service_name,
        {
            "model": model_name,
            "cpu_cores": settings.cpu_cores,
            "memory_gb": settings.memory_gb,
            "auth_enabled": settings.auth_enabled,
            "enable_app_insights": settings.enable_app_insights,
            "entry_script": f"AutoML's {settings.scoring_file} from the model's run",
            "environment": "the AutoML run's environment",
        },
        ACI_COST + ("; " + APP_INSIGHTS_COST if settings.enable_app_insights else ""),
    )


def deploy_configuration(settings: DeploySettings):
    """Build and validate the SDK's ``AciServiceDeploymentConfiguration`` (offline)."""
    from azureml.core.webservice import AciWebservice

    configuration = AciWebservice.deploy_configuration(
        cpu_cores=settings.cpu_cores,
        memory_gb=settings.memory_gb,
        auth_enabled=settings.auth_enabled,
        enable_app_insights=settings.enable_app_insights,
        description=settings.description,
    )
    configuration.validate_configuration()
    return configuration


def inference_config(entry_script: Path, environment):
    """Build the SDK's ``InferenceConfig`` for a local scoring file and an environment (offline)."""
    from azureml.core.model import InferenceConfig

    return InferenceConfig(entry_script=str(entry_script), environment=environment)


def get_service(workspace, name: str):
    """Return the web service ``name``, or None when the workspace has none by that name."""
    from azureml.core.webservice import Webservice

    try:
        return with_retry(lambda: Webservice(workspace, name), f"get service {name}")
    except Exception as exc:  # noqa: BLE001
        if classify(exc) == "not_found" or "WebserviceNotFound" in str(exc):
            return None
        raise cloud_error(f"reading service {name}", exc)


def require_service(workspace, name: str):
    service = get_service(workspace, name)
    if service is None:
        raise CloudError(f"service {name!r} not found in workspace {workspace.name}; run `lab cloud deploy` first")
    return service


def _run_of(model):
    from azureml.core import Experiment, Run

    if not model.run_id or not model.experiment_name:
        raise CloudError(
            f"model {model.name}:{model.version} has no run; register it from an AutoML run with `lab cloud automl`"
        )
    return Run(Experiment(model.workspace, model.experiment_name), model.run_id)


def scoring_assets(model, folder: Path, scoring_file: str):
    """Download AutoML's scoring file from the model's run into ``folder``; return it and the run's environment."""
    run = _run_of(model)
    entry_script = folder / "score.py"
    try:
        with_retry(lambda: run.download_file(scoring_file, str(entry_script)), f"download {scoring_file}")
        environment = with_retry(run.get_environment, f"environment of run {run.id}")
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"reading {scoring_file} and the environment of run {run.id}", exc)
    return entry_script, environment


def deploy_model(workspace, model, settings: DeploySettings, replace: bool = False):
    """Deploy ``model`` as ``settings.service_name``; return ``(service, reused)``.

    A healthy service that already serves this model version is reused. A service serving another
    model, or one in a failed state, is replaced only with ``replace=True``. When the deployment
    fails, the message gives Azure's cause, states that the failed service is left in the
    workspace, and names the commands that read its logs and delete it.
    """
    from azureml.core.model import Model

    existing = get_service(workspace, settings.service_name)
    if existing is not None and not replace:
        served = {(m.name, m.version) for m in (existing.models or [])}
        if (model.name, model.version) in served and existing.state == "Healthy":
            logger.info("reusing service %s (state %s)", existing.name, existing.state)
            return existing, True
        raise CloudError(
            f"service {settings.service_name!r} exists (state {existing.state}, models "
            f"{sorted(served) or 'none'}) and does not serve {model.name}:{model.version}; pass --replace "
            "to redeploy it, or --service NAME for a new one"
        )

    configuration = deploy_configuration(settings)
    with tempfile.TemporaryDirectory(prefix="lab-cloud-deploy-") as tmp:
        entry_script, environment = scoring_assets(model, Path(tmp), settings.scoring_file)
        try:
            service = Model.deploy(
                workspace,
                settings.service_name,
                [model],
                inference_config(entry_script, environment),
                configuration,
                overwrite=replace,
            )
        except Exception as exc:  # noqa: BLE001
            raise cloud_error(f"starting deployment of service {settings.service_name}", exc)
        try:
            service.wait_for_deployment(show_output=False)
        except Exception as exc:  # noqa: BLE001
            logger.debug("wait_for_deployment raised %r", exc)
    if service.state != "Healthy":
        raise deployment_failed(service)
    return service, False


def deployment_failed(service) -> CloudError:
    """Build the error for a service that did not become healthy; it stays in the workspace."""
    cause = cause_of_details(getattr(service, "error", None))
    return CloudError(
        f"deployment of service {service.name} failed (state {service.state}): {cause}; "
        f"the failed service is left in the workspace: read `lab cloud logs --service {service.name}`, then "
        f"remove it with `lab cloud cleanup --service {service.name}`"
    )


def describe_service(service) -> ServiceInfo:
    """Collect the URIs, state and masked keys of ``service``."""
    primary = secondary = None
    if getattr(service, "auth_enabled", False):
        try:
            primary, secondary = with_retry(service.get_keys, f"keys of service {service.name}")
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not read the keys of service %s: %s", service.name, exc)
    return ServiceInfo(
        name=service.name,
        state=service.state,
        scoring_uri=service.scoring_uri,
        swagger_uri=service.swagger_uri,
        primary_key_masked=mask_secret(primary),
        secondary_key_masked=mask_secret(secondary),
        app_insights=bool(getattr(service, "enable_app_insights", False)),
    )


def service_lines(info: ServiceInfo) -> list[str]:
    return [
        f"service {info.name} ({info.state})",
        f"  scoring URI  {info.scoring_uri}",
        f"  swagger URI  {info.swagger_uri}",
        f"  primary key  {info.primary_key_masked}",
        f"  secondary    {info.secondary_key_masked}",
        f"  app insights {'enabled' if info.app_insights else 'disabled'}",
        "  keys: " + KEYS_HINT.format(name=info.name),
    ]


def enable_app_insights(workspace, name: str):
    """Turn on Application Insights for an existing service; return ``(service, changed)``."""
    service = require_service(workspace, name)
    if getattr(service, "enable_app_insights", False):
        return service, False
    try:
        service.update(enable_app_insights=True)
        service.wait_for_deployment(show_output=False)
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"enabling Application Insights on service {name}", exc)
    if service.state != "Healthy":
        raise deployment_failed(service)
    return service, True


def service_logs(workspace, name: str, tail: int | None = None) -> str:
    service = require_service(workspace, name)
    try:
        text = with_retry(service.get_logs, f"logs of service {name}")
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"reading the logs of service {name}", exc)
    if tail:
        text = "\n".join(text.splitlines()[-tail:])
    return text


def download_swagger(swagger_uri: str, target: Path, key: str | None = None, session=None) -> Path:
    """Download swagger.json to ``target`` atomically, sending the key only after a 401 response."""
    import requests

    http = session or requests.Session()

    def fetch(headers):
        response = http.get(swagger_uri, headers=headers, timeout=30)
        if response.status_code in (429, 500, 502, 503, 504):
            response.raise_for_status()
        return response

    try:
        response = with_retry(lambda: fetch({}), f"GET {swagger_uri}")
        if response.status_code == 401 and key:
            response = with_retry(lambda: fetch({"Authorization": f"Bearer {key}"}), f"GET {swagger_uri}")
        response.raise_for_status()
    except requests.RequestException as exc:
        raise cloud_error(f"downloading swagger from {swagger_uri}", exc, "check that the service is Healthy")
    try:
        json.loads(response.content)
    except ValueError:
        raise CloudError(f"{swagger_uri} did not return JSON; check that the service is Healthy") from None
    atomic_write_bytes(target, response.content)
    return target
