"""The registered-model contract shared by training, the scoring service and the pipelines.

A model version folder (``models/<name>/<version>/``) contains:

- ``model.pkl``: a fitted estimator saved with joblib. It takes a ``pandas.DataFrame`` whose
  columns are the feature columns by name, and has ``classes_``, ``predict_proba(X)`` of shape
  (n_samples, n_classes) and ``predict(X)`` returning class labels with the decision threshold
  applied. It loads with the project's own dependencies only.
- ``schema.json``: ``{"label": ..., "columns": [{"name", "type", "missing", "categories"?}, ...]}``
  in training order (the swagger order).
- ``sample.json``: ``{"data": [record, ...]}``, a few training rows without the label, used as the
  swagger example and the inference-schema sample.
- ``requirements.txt``: the exact versions of the packages the model needs to load and score.
- ``manifest.json``: dataset reference, label, classes, primary metric, cross-validated metrics,
  decision threshold, algorithm and run id (written by the workspace on registration).
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from lab.workspace import Asset, read_json

MODEL_FILE = "model.pkl"
SCHEMA_FILE = "schema.json"
SAMPLE_FILE = "sample.json"
REQUIREMENTS_FILE = "requirements.txt"
DEFAULT_MODEL_NAME = "bankmarketing-automl"

# Packages a pickled model of this project needs at load and scoring time.
RUNTIME_PACKAGES = ("scikit-learn", "lightgbm", "imbalanced-learn", "pandas", "numpy", "scipy", "joblib")


def package_requirements() -> list[str]:
    """Return ``name==version`` lines for the runtime packages installed here, plus this project."""
    lines = []
    for package in RUNTIME_PACKAGES:
        try:
            lines.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    lines.append(f"azureml-ops-lab=={metadata.version('azureml-ops-lab')}")
    return lines


def write_model_files(folder: Path, model, schema: dict, sample_records: list[dict]) -> None:
    """Write model.pkl, schema.json, sample.json and requirements.txt into a staging folder."""
    import joblib

    joblib.dump(model, folder / MODEL_FILE)
    (folder / SCHEMA_FILE).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    (folder / SAMPLE_FILE).write_text(json.dumps({"data": sample_records}, indent=2) + "\n", encoding="utf-8")
    (folder / REQUIREMENTS_FILE).write_text("\n".join(package_requirements()) + "\n", encoding="utf-8")


def load_model(asset: Asset):
    import joblib

    return joblib.load(asset.path / MODEL_FILE)


def load_schema(folder: Path) -> dict:
    return read_json(folder / SCHEMA_FILE)
