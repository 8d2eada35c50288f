"""Pipeline definitions: steps, declared parameters and named outputs, stored in the workspace.

A pipeline version is one folder, ``pipelines/definitions/<name>/<version>/pipeline.json``. As for
datasets and models, the file is written into a staging folder that is renamed to its version
number under the workspace lock, so a version is either complete or absent.

The only step graph today is the exercise's: ``automl_module`` (AutoML on a registered dataset
version, outputs ``metrics_data`` and ``model_data``) followed by ``register_model`` (registers
``model_data`` as a new model version).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.pipelines.errors import PipelineError, RequestError
from lab.workspace import Workspace, atomic_write_json, read_json, utc_now

logger = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.json"
AUTOML_STEP = "automl_module"
REGISTER_STEP = "register_model"
METRICS_OUTPUT = "metrics_data"
MODEL_OUTPUT = "model_data"
OUTPUT_NAMES = (METRICS_OUTPUT, MODEL_OUTPUT)

DEFAULT_PIPELINE_NAME = "bankmarketing-train"
DEFAULT_TIMEOUT_MINUTES = 20.0
# A lab choice, not an Azure limit: a run holds a runner slot and the CPU for its whole budget, so a
# budget of days is almost surely a typo, and it would block every run queued behind it.
MAX_TIMEOUT_MINUTES = 24 * 60.0
DEFAULT_PRIMARY_METRIC = "AUC_weighted"
# Azure AutoML's names for the classification primary metrics.
PRIMARY_METRICS = (
    "accuracy",
    "AUC_weighted",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)
PARAMETER_TYPES = ("string", "integer", "float", "boolean")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter that a trigger may assign, like Azure's ``PipelineParameter``.

    ``minimum`` is exclusive and ``maximum`` inclusive; both apply to numeric types, in ``unit``.
    ``choices`` applies to strings.
    """

    name: str
    type: str
    default: Any
    description: str = ""
    minimum: float | None = None
    choices: tuple[str, ...] | None = None
    maximum: float | None = None
    unit: str = ""

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise ``RequestError`` (400) naming it.

        Numbers may also come as strings ("20"), as Azure's REST API accepts them.
        """
        converted = _convert(self.type, value)
        if converted is None:
            raise RequestError(
                400,
                f"parameter {self.name!r} expects {_TYPE_WORDS[self.type]}, got {_show(value)}",
            )
        too_small = self.minimum is not None and converted <= self.minimum
        too_large = self.maximum is not None and converted > self.maximum
        if too_small or too_large:
            raise RequestError(400, f"parameter {self.name!r} must be {self.range_text()}, got {converted!r}")
        if self.choices is not None and converted not in self.choices:
            raise RequestError(
                400, f"parameter {self.name!r} must be one of {', '.join(self.choices)}; got {_show(value)}"
            )
        return converted

    def range_text(self) -> str:
        """Describe the numeric range, e.g. "greater than 0 and at most 1440 minutes"."""
        bounds = []
        if self.minimum is not None:
            bounds.append(f"greater than {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"at most {self.maximum:g}")
        text = " and ".join(bounds) or "any number"
        return f"{text} {self.unit}" if self.unit else text

    def to_json(self) -> dict:
        out = asdict(self)
        out["choices"] = list(self.choices) if self.choices is not None else None
        return out

    @classmethod
    def from_json(cls, data: dict) -> Parameter:
        choices = data.get("choices")
        return cls(
            name=data["name"],
            type=data["type"],
            default=data["default"],
            description=data.get("description", ""),
            minimum=data.get("minimum"),
            choices=tuple(choices) if choices is not None else None,
            # Definitions stored before the upper bound existed get it on reading.
            maximum=data["maximum"] if "maximum" in data else _ADDED_MAXIMUMS.get(data["name"]),
            unit=data.get("unit", ""),
        )


_ADDED_MAXIMUMS = {"timeout_minutes": MAX_TIMEOUT_MINUTES}
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "float": "a number", "boolean": "true or false"}


def _convert(kind: str, value: Any) -> Any:
    """Return ``value`` converted to ``kind``, or None when it does not fit."""
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = int(value) if kind == "integer" else float(value)
        except ValueError:
            return None
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Step:
    """One step of a pipeline: what it runs, what it reads and the outputs it writes."""

    name: str
    kind: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "inputs": list(self.inputs), "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, data: dict) -> Step:
        return cls(data["name"], data["kind"], tuple(data.get("inputs", ())), tuple(data.get("outputs", ())))


@dataclass(frozen=True)
class PipelineDefinition:
    """A stored pipeline version: the dataset it trains on, its steps and declared parameters."""

    name: str
    version: int
    dataset: str
    label: str
    model_name: str
    description: str
    steps: tuple[Step, ...]
    parameters: tuple[Parameter, ...]
    created_at: str
    path: Path | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(output for step in self.steps for output in step.outputs)

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        declared = ", ".join(p.name for p in self.parameters) or "none"
        raise RequestError(
            400, f"parameter {name!r} is not declared by pipeline {self.ref} (declared: {declared})"
        )

    def resolve_parameters(self, assignments: dict[str, Any] | None) -> dict[str, Any]:
        """Return every declared parameter's value: the assignment if given, else the default.

        Raises ``RequestError`` (400) for an undeclared name, a value of the wrong type or out of
        range, and for a default out of range, which a definition stored before a range was
        declared can have.
        """
        assignments = assignments or {}
        values = {}
        for name, value in assignments.items():
            values[name] = self.parameter(name).coerce(value)
        for parameter in self.parameters:
            if parameter.name in values:
                continue
            try:
                values[parameter.name] = parameter.coerce(parameter.default)
            except RequestError as exc:
                raise RequestError(400, f"the default of pipeline {self.ref} is invalid: {exc}; assign "
                                   f"{parameter.name} in ParameterAssignments, or create the pipeline again") from None
        return {parameter.name: values[parameter.name] for parameter in self.parameters}

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "dataset": self.dataset,
            "label": self.label,
            "model_name": self.model_name,
            "description": self.description,
            "steps": [step.to_json() for step in self.steps],
            "parameters": [parameter.to_json() for parameter in self.parameters],
            "outputs": list(self.outputs),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: dict, path: Path | None = None) -> PipelineDefinition:
        return cls(
            name=data["name"],
            version=int(data["version"]),
            dataset=data["dataset"],
            label=data["label"],
            model_name=data["model_name"],
            description=data.get("description", ""),
            steps=tuple(Step.from_json(step) for step in data["steps"]),
            parameters=tuple(Parameter.from_json(p) for p in data["parameters"]),
            created_at=data["created_at"],
            path=path,
        )


def pipelines_dir(workspace: Workspace) -> Path:
    return workspace.root / "pipelines"


# The `lab pipeline create` option that sets each parameter's default, named in its errors.
_CREATE_OPTIONS = {"timeout_minutes": "--timeout", "primary_metric": "--primary-metric"}


def automl_parameters(timeout_minutes: float, primary_metric: str) -> tuple[Parameter, ...]:
    """Declare the parameters of the AutoML training pipeline with their defaults."""
    defaults = (
        Parameter("timeout_minutes", "float", timeout_minutes, "AutoML time budget in minutes", minimum=0.0,
                  maximum=MAX_TIMEOUT_MINUTES, unit="minutes"),
        Parameter("primary_metric", "string", primary_metric, "metric that ranks the leaderboard",
                  choices=PRIMARY_METRICS),
    )
    for parameter in defaults:
        try:
            parameter.coerce(parameter.default)
        except RequestError as exc:
            option = _CREATE_OPTIONS[parameter.name]
            raise PipelineError(f"invalid {option}: {exc}; pass another {option}") from None
    return defaults


def automl_steps() -> tuple[Step, ...]:
    return (
        Step(AUTOML_STEP, "automl", inputs=("dataset",), outputs=(METRICS_OUTPUT, MODEL_OUTPUT)),
        Step(REGISTER_STEP, "register_model", inputs=(MODEL_OUTPUT,)),
    )


def create_pipeline(
    workspace: Workspace,
    dataset_ref: str | None,
    name: str = DEFAULT_PIPELINE_NAME,
    model_name: str | None = None,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    primary_metric: str = DEFAULT_PRIMARY_METRIC,
    description: str = "",
) -> PipelineDefinition:
    """Store a new version of pipeline ``name``: AutoML on a dataset version, then registration.

    The dataset reference is pinned to a version here (``name`` becomes ``name:<latest>``), so later
    dataset versions do not change what the pipeline trains on. Raises ``WorkspaceError`` when the
    dataset is not registered and ``PipelineError`` for an invalid name or default.
    """
    from lab.models import DEFAULT_MODEL_NAME

    check_name(name, "pipeline")
    dataset = workspace.get("datasets", dataset_ref)
    model_name = model_name or DEFAULT_MODEL_NAME
    check_name(model_name, "model")
    parameters = automl_parameters(timeout_minutes, primary_metric)
    fields = {
        "dataset": dataset.ref,
        "label": dataset.manifest.get("label", "y"),
        "model_name": model_name,
        "description": description,
        "steps": [step.to_json() for step in automl_steps()],
        "parameters": [parameter.to_json() for parameter in parameters],
    }
    return _store_version(workspace, name, fields)


def _store_version(workspace: Workspace, name: str, fields: dict) -> PipelineDefinition:
    base = pipelines_dir(workspace) / "definitions"
    staging = workspace.root / ".staging" / f"pipeline-{name}-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    try:
        with workspace.lock():
            versions = [d.version for d in list_pipelines(workspace, name)]
            version = max(versions, default=0) + 1
            data = {"name": name, "version": version, **fields, "created_at": utc_now()}
            data["outputs"] = [o for step in data["steps"] for o in step.get("outputs", ())]
            atomic_write_json(staging / PIPELINE_FILE, data)
            target = base / name / str(version)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("created pipeline %s:%d at %s", name, version, target)
    return PipelineDefinition.from_json(data, target)


def list_pipelines(workspace: Workspace, name: str | None = None) -> list[PipelineDefinition]:
    """List stored pipeline versions, sorted by name and version; incomplete folders are skipped."""
    base = pipelines_dir(workspace) / "definitions"
    if not base.is_dir():
        return []
    names = [name] if name else sorted(p.name for p in base.iterdir() if p.is_dir())
    found = []
    for pipeline_name in names:
        folder = base / pipeline_name
        if not folder.is_dir():
            continue
        for version_dir in folder.iterdir():
            if version_dir.name.isdigit() and (version_dir / PIPELINE_FILE).is_file():
                found.append(PipelineDefinition.from_json(read_json(version_dir / PIPELINE_FILE), version_dir))
    found.sort(key=lambda d: (d.name, d.version))
    return found


def get_pipeline(workspace: Workspace, ref: str | None = None) -> PipelineDefinition:
    """Return ``name:version``, ``name`` (latest version) or, with ``ref=None``, the newest pipeline."""
    if ref is None:
        found = list_pipelines(workspace)
        if not found:
            raise PipelineError(f"no pipeline in workspace {workspace.root}; run `lab pipeline create` first")
        return max(found, key=lambda d: d.created_at)
    name, _, version = ref.partition(":")
    found = list_pipelines(workspace, name)
    if not found:
        raise PipelineError(f"no pipeline named {name!r} in workspace {workspace.root}; run `lab pipeline create` first")
    if not version or version == "latest":
        return found[-1]
    for definition in found:
        if str(definition.version) == version:
            return definition
    known = ", ".join(str(d.version) for d in found)
    raise PipelineError(f"pipeline {name!r} has no version {version!r} (stored: {known}); use NAME:NUMBER")


def check_name(name: str, kind: str) -> None:
    if not name or not set(name) <= _NAME_CHARS or name.startswith(".") or len(name) > 100:
        raise PipelineError(
            f"invalid {kind} name {name!r}; use up to 100 letters, digits, '-', '_' and '.', not starting with '.'"
        )
