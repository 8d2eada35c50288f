"""Settings of each Azure resource the lab creates, with the exercise's values as defaults.

Plain dataclasses without an ``azureml`` import, so dry runs and tests can build and print them
without the SDK.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from lab.data import DEFAULT_DATASET_NAME, DEFAULT_LABEL, OFFICIAL_URL

from cloud.errors import CloudError

PRIMARY_METRICS = (
    "accuracy",
    "AUC_weighted",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)
# Azure's rule for ACI service names: 3 to 32 characters, lowercase letters, digits and dashes,
# starting with a letter and not ending with a dash.
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
# AmlCompute names: 2 to 16 characters, letters, digits and dashes, starting with a letter.
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,15}$")
# azureml-core 1.61 checks experiment names with ^[a-zA-Z0-9][\w\-]{0,254}$ (_valid_experiment_name).
# This pattern keeps to ASCII, as the local pipeline endpoint does.
EXPERIMENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
EXPERIMENT_NAME_RULE = "use 1 to 255 letters, digits, '_' or '-', starting with a letter or digit"
# azureml-core 1.61 model_name_validation: letters, digits, '-', '.', '_', 1 to 255 characters.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
# The run id pattern of the run history REST API in azureml-core 1.61.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,255}$")
# azureml-automl-core 1.62 accepts experiment timeouts from 15 minutes to 525600 minutes (one year).
MIN_TIMEOUT_MINUTES = 15
MAX_TIMEOUT_MINUTES = 525600


def describe_minutes(minutes: int) -> str:
    """Format a time budget in minutes, adding hours or days when minutes alone are hard to read."""
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 2880:
        return f"{minutes} min ({minutes / 60:.1f} h)"
    return f"{minutes} min ({minutes / 1440:.1f} days)"


def check_experiment_name(name: str, field_name: str = "experiment name") -> None:
    """Raise ``CloudError`` unless ``name`` is an experiment name Azure ML accepts."""
    if not isinstance(name, str) or not EXPERIMENT_NAME_RE.fullmatch(name):
        raise CloudError(f"invalid {field_name} {str(name)[:60]!r}; {EXPERIMENT_NAME_RULE}")


def check_model_name(name: str, field_name: str = "model name") -> None:
    """Raise ``CloudError`` unless ``name`` is a model name Azure ML accepts."""
    if not MODEL_NAME_RE.fullmatch(name):
        raise CloudError(
            f"invalid {field_name} {name[:60]!r}; use 1 to 255 letters, digits, '-', '.' or '_', starting with a letter "
            "or digit"
        )


def check_run_id(run_id: str, option: str = "--run-id") -> None:
    """Raise ``CloudError`` unless ``run_id`` has the form of an Azure ML run id."""
    if not RUN_ID_RE.fullmatch(run_id):
        raise CloudError(
            f"invalid {option} {run_id[:60]!r}; pass the run id that `lab cloud pipeline trigger` or `create` "
            "printed (letters, digits, '_' and '-')"
        )


@dataclass(frozen=True)
class ComputeSettings:
    """An AmlCompute cluster; billed per node-hour while nodes are allocated."""

    name: str = "automl-cluster"
    vm_size: str = "STANDARD_D2_V2"
    min_nodes: int = 0
    max_nodes: int = 4
    idle_seconds_before_scaledown: int = 1800  # the SDK's default
    vm_priority: str = "dedicated"

    def __post_init__(self):
        if not CLUSTER_NAME_RE.fullmatch(self.name):
            raise CloudError(
                f"invalid cluster name {self.name!r}; use 2 to 16 letters, digits or dashes, starting with a letter"
            )
        if self.min_nodes < 0 or self.max_nodes < 1 or self.min_nodes > self.max_nodes:
            raise CloudError(
                f"invalid node range min {self.min_nodes}, max {self.max_nodes}; "
                "use 0 <= --min-nodes <= --max-nodes and --max-nodes >= 1"
            )
        if self.idle_seconds_before_scaledown < 0:
            raise CloudError(f"invalid --idle-seconds {self.idle_seconds_before_scaledown}; use 0 or more seconds")
        if self.vm_priority not in ("dedicated", "lowpriority"):
            raise CloudError(f"invalid VM priority {self.vm_priority!r}; use dedicated or lowpriority")


@dataclass(frozen=True)
class DatasetSettings:
    """A tabular dataset registered from a URL; versions are reused when the content matches."""

    name: str = DEFAULT_DATASET_NAME
    url: str = OFFICIAL_URL
    description: str = "Bank Marketing training data (UCI), label y"

    def __post_init__(self):
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CloudError(
                f"invalid dataset URL {self.url[:120]!r}; pass an http:// or https:// address of a CSV file, "
                "which Azure ML reads from its side"
            )


@dataclass(frozen=True)
class AutoMLSettings:
    """The exercise's AutoML classification run."""

    experiment_name: str = "automl-bankmarketing"
    task: str = "classification"
    label_column_name: str = DEFAULT_LABEL
    primary_metric: str = "AUC_weighted"
    experiment_timeout_minutes: int = 20
    max_concurrent_iterations: int = 5
    enable_early_stopping: bool = True
    featurization: str = "auto"
    n_cross_validations: int | None = None
    model_name: str = "bankmarketing-automl"

    def __post_init__(self):
        check_experiment_name(self.experiment_name)
        if not self.label_column_name.strip():
            raise CloudError("empty label column name; pass --label with the name of the column to predict")
        check_model_name(self.model_name)
        if self.primary_metric not in PRIMARY_METRICS:
            raise CloudError(
                f"invalid primary metric {self.primary_metric!r}; use one of {', '.join(PRIMARY_METRICS)}"
            )
        if not MIN_TIMEOUT_MINUTES <= self.experiment_timeout_minutes <= MAX_TIMEOUT_MINUTES:
            raise CloudError(
                f"invalid experiment timeout {self.experiment_timeout_minutes} min; AutoML needs at least "
                f"{MIN_TIMEOUT_MINUTES} and at most {MAX_TIMEOUT_MINUTES} (one year)"
            )
        if self.max_concurrent_iterations < 1:
            raise CloudError(f"invalid max concurrent iterations {self.max_concurrent_iterations}; use 1 or more")
        if self.n_cross_validations is not None and self.n_cross_validations < 2:
            raise CloudError(f"invalid cross-validation count {self.n_cross_validations}; use 2 or more, or omit it")
        if self.featurization not in ("auto", "off"):
            raise CloudError(f"invalid featurization {self.featurization!r}; use auto or off")

    def automl_config_kwargs(self) -> dict:
        """Return the keyword arguments of ``AutoMLConfig`` that these settings fix."""
        kwargs = {
            "task": self.task,
            "label_column_name": self.label_column_name,
            "primary_metric": self.primary_metric,
            "experiment_timeout_minutes": self.experiment_timeout_minutes,
            "max_concurrent_iterations": self.max_concurrent_iterations,
            "enable_early_stopping": self.enable_early_stopping,
            "featurization": self.featurization,
        }
        if self.n_cross_validations is not None:
            kwargs["n_cross_validations"] = self.n_cross_validations
        return kwargs

    def fingerprint(self, dataset_ref: str, cluster: str) -> str:
        """Return a short hash of the settings, dataset version and cluster, used to reuse a run."""
        payload = json.dumps({**asdict(self), "dataset": dataset_ref, "cluster": cluster}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class DeploySettings:
    """An ACI web service; billed per second for its vCPUs and memory while it exists."""

    service_name: str = "bankmarketing-service"
    cpu_cores: float = 1.0
    memory_gb: float = 1.0
    auth_enabled: bool = True
    enable_app_insights: bool = True
    scoring_file: str = "outputs/scoring_file_v_1_0_0.py"
    description: str = "Bank Marketing AutoML model, key auth and Application Insights"

    def __post_init__(self):
        if not SERVICE_NAME_RE.fullmatch(self.service_name):
            raise CloudError(
                f"invalid service name {self.service_name!r}; use 3 to 32 lowercase letters, digits or dashes, "
                "starting with a letter"
            )
        if not 0.1 <= self.cpu_cores <= 4 or not 0.1 <= self.memory_gb <= 16:
            raise CloudError(
                f"invalid ACI size {self.cpu_cores} cores, {self.memory_gb} GB; use 0.1 to 4 cores and 0.1 to 16 GB"
            )


@dataclass(frozen=True)
class PipelineSettings:
    """The exercise's training pipeline and its published endpoint."""

    experiment_name: str = "pipeline-bankmarketing"
    step_name: str = "automl_module"
    published_name: str = "Bankmarketing Train"
    description: str = "Training bankmarketing pipeline"
    version: str = "1.0"
    trigger_experiment: str = "pipeline-rest-endpoint"
    allow_reuse: bool = True
    parameter_assignments: dict = field(default_factory=dict)

    def __post_init__(self):
        check_experiment_name(self.experiment_name, "pipeline experiment name")
        check_experiment_name(self.trigger_experiment, "trigger experiment name")


def concurrency_warning(automl: AutoMLSettings, compute: ComputeSettings) -> str | None:
    """Describe what happens when AutoML requests more child runs at once than the cluster has nodes.

    An AmlCompute node runs one child run at a time. Azure accepts the setting and queues the extra
    child runs (azureml-train-automl-client 1.62 documents this), so this is a warning, not an
    error. The exercise itself asks for 5 concurrent iterations on a cluster of up to 4 nodes.
    """
    if automl.max_concurrent_iterations <= compute.max_nodes:
        return None
    return (
        f"--max-concurrent {automl.max_concurrent_iterations} exceeds --max-nodes {compute.max_nodes}: "
        f"at most {compute.max_nodes} child runs run at once and the others wait for a node; "
        f"pass --max-concurrent {compute.max_nodes} or raise --max-nodes"
    )
