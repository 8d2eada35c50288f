"""Download a registered AutoML model with its scoring file and conda specification.

The folder it writes is what the local scoring service serves::

    model.pkl        the pickled AutoML pipeline
    score.py         AutoML's scoring file (scoring_file_v_1_0_0.py) from the model's run
    conda_env.yml    the run's conda specification (conda_env_v_1_0_0.yml)
    Dockerfile       builds the image from conda_env.yml, as Azure builds it
    manifest.json    what the folder contains and where it came from

An AutoML model pickled in Azure needs ``azureml-train-automl-runtime`` to load, and that package
has no build for Python 3.11. The image is therefore built from the model's own conda
specification (Python 3.9 or 3.10 in current AutoML runs), not from the lab's environment.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lab.workspace import atomic_write_json, atomic_write_text, utc_now

from cloud.errors import CloudError, cloud_error, with_retry
from cloud.plan import PlannedChange

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pkl"
SCORE_FILE = "score.py"
CONDA_FILE = "conda_env.yml"
DOCKER_FILE = "Dockerfile"
MANIFEST_FILE = "manifest.json"
DOWNLOADED_FILES = (MODEL_FILE, SCORE_FILE, CONDA_FILE, DOCKER_FILE, MANIFEST_FILE)
RUN_SCORING_FILE = "outputs/scoring_file_v_1_0_0.py"
RUN_CONDA_FILE = "outputs/conda_env_v_1_0_0.yml"
FLAVOR = "azureml-automl"
# Azure ML's base image, which contains conda; the model's own Python comes from conda_env.yml.
# NOTE: the tests check this Dockerfile's text only; no test builds it.
CONDA_BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"

DOCKERFILE_TEMPLATE = """\
# Built from the model's own conda specification, as Azure builds an AutoML deployment:
# azureml-train-automl-runtime, which the pickled model needs, has no Python 3.11 build.
FROM {base_image}
WORKDIR /var/azureml-app
COPY conda_env.yml /tmp/conda_env.yml
RUN conda env create -n automl -f /tmp/conda_env.yml && conda clean -afy
COPY model.pkl score.py ./model/
ENV AZUREML_MODEL_DIR=/var/azureml-app/model \\
    AZUREML_ENTRY_SCRIPT=/var/azureml-app/model/score.py
EXPOSE 5001
CMD ["conda", "run", "--no-capture-output", "-n", "automl", "azmlinfsrv", "--entry_script", "/var/azureml-app/model/score.py", "--port", "5001"]
"""


class ModelArtifacts(Protocol):
    """The seam to a live workspace: the three files a downloaded model needs, and where they came from."""

    def describe(self) -> dict: ...

    def download_model(self, folder: Path) -> Path: ...

    def download_run_file(self, name: str, target: Path) -> None: ...


@dataclass
class RegisteredModelArtifacts:
    """``ModelArtifacts`` for a registered model in an Azure ML workspace (SDK v1)."""

    model: object

    def describe(self) -> dict:
        model = self.model
        return {
            "name": model.name,
            "version": model.version,
            "id": model.id,
            "run_id": model.run_id,
            "experiment": model.experiment_name,
            "workspace": model.workspace.name,
            "tags": dict(model.tags or {}),
        }

    def download_model(self, folder: Path) -> Path:
        path = with_retry(
            lambda: self.model.download(target_dir=str(folder), exist_ok=True), f"download model {self.model.id}"
        )
        return Path(path)

    def download_run_file(self, name: str, target: Path) -> None:
        from azureml.core import Experiment, Run

        model = self.model
        if not model.run_id or not model.experiment_name:
            raise CloudError(f"model {model.id} has no run, so it has no AutoML scoring file; pick an AutoML model")
        run = Run(Experiment(model.workspace, model.experiment_name), model.run_id)
        with_retry(lambda: run.download_file(name, str(target)), f"download {name} of run {run.id}")


def plan_download(model_ref: str, target: str) -> PlannedChange:
    return PlannedChange(
        "download",
        "registered model",
        model_ref,
        {"files": ", ".join(DOWNLOADED_FILES), "into": target},
        "none (storage egress of a few MB)",
    )


def conda_python_version(conda_text: str) -> str | None:
    """Return the ``python=X.Y`` pin of a conda specification, or None when it has none."""
    match = re.search(r"^\s*-\s*python\s*[=<>]=?\s*([0-9]+\.[0-9]+(?:\.[0-9]+)?)", conda_text, re.MULTILINE)
    return match.group(1) if match else None


def lay_out_model(artifacts: ModelArtifacts, folder: Path) -> dict:
    """Download the model files into ``folder`` (empty or new) and return the manifest written there.

    Raises ``CloudError`` when a file is missing from the model or its run.
    """
    folder.mkdir(parents=True, exist_ok=True)
    source = artifacts.describe()
    with tempfile.TemporaryDirectory(prefix="lab-cloud-model-") as tmp:
        downloaded = artifacts.download_model(Path(tmp))
        pickle = downloaded if downloaded.is_file() else next(downloaded.rglob(MODEL_FILE), None)
        if pickle is None or not pickle.is_file():
            raise CloudError(f"model {source['name']}:{source['version']} has no {MODEL_FILE}; pick an AutoML model")
        shutil.copyfile(pickle, folder / MODEL_FILE)
    try:
        artifacts.download_run_file(RUN_SCORING_FILE, folder / SCORE_FILE)
        artifacts.download_run_file(RUN_CONDA_FILE, folder / CONDA_FILE)
    except CloudError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"downloading the scoring file and conda specification of run {source.get('run_id')}", exc)

    python = conda_python_version((folder / CONDA_FILE).read_text(encoding="utf-8"))
    atomic_write_text(folder / DOCKER_FILE, DOCKERFILE_TEMPLATE.format(base_image=CONDA_BASE_IMAGE))
    manifest = {
        "flavor": FLAVOR,
        "model_file": MODEL_FILE,
        "entry_script": SCORE_FILE,
        "conda_file": CONDA_FILE,
        "dockerfile": DOCKER_FILE,
        "python": python,
        "payload": "v1: {\"data\": [record, ...]}, answer is a JSON string that contains JSON",
        "runtime_note": "needs azureml-train-automl-runtime; build the image from conda_env.yml, not Python 3.11",
        "source": {"kind": "azureml", **source},
        "downloaded_at": utc_now(),
    }
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    return manifest


def download_to_folder(artifacts: ModelArtifacts, target: Path, overwrite: bool = False) -> dict:
    """Lay the model out in ``target`` through a staging folder renamed at the end.

    An existing folder with the same model id is reused (returned unchanged) unless ``overwrite``.
    """
    from lab.workspace import read_json

    target = Path(target)
    source = artifacts.describe()
    if (target / MANIFEST_FILE).is_file() and not overwrite:
        manifest = read_json(target / MANIFEST_FILE)
        if manifest.get("source", {}).get("id") == source["id"]:
            logger.info("reusing %s, which already contains %s", target, source["id"])
            return manifest
        raise CloudError(f"{target} contains another model ({manifest.get('source', {}).get('id')}); "
                         "pass --overwrite or another --to folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        manifest = lay_out_model(artifacts, staging)
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def download_to_workspace(artifacts: ModelArtifacts, workspace, name: str | None = None):
    """Register the downloaded model as a new version in the local lab workspace; return the ``Asset``.

    NOTE: the folder has no schema.json, sample.json or requirements.txt of the local model
    contract, so the local scoring service has to serve it with score.py and conda_env.yml.
    """
    source = artifacts.describe()
    local_name = name or source["name"]
    for asset in workspace.list("models", local_name):
        if asset.manifest.get("source", {}).get("id") == source["id"]:
            logger.info("reusing local model %s, downloaded from %s", asset.ref, source["id"])
            return asset

    def build(folder: Path) -> dict:
        manifest = lay_out_model(artifacts, folder)
        (folder / MANIFEST_FILE).unlink()
        return manifest

    return workspace.register("models", local_name, build)
