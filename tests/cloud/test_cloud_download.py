"""Laying out a downloaded AutoML model for the local scoring service (cloud.download).

``FolderArtifacts`` replaces a registered model in a live workspace: it serves a real
pickled scikit-learn model and AutoML-shaped scoring and conda files from a folder. What this
does not cover: ``Model.download`` and ``Run.download_file`` against Azure.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LogisticRegression

from cloud import download
from cloud.errors import CloudError
from lab.workspace import Workspace

SEED = 0
CONDA_TEXT = """\
name: project_environment
dependencies:
  - python=3.9.19
  - pip:
    - azureml-train-automl-runtime==1.60.0
    - azureml-defaults==1.60.0
channels:
  - anaconda
  - conda-forge
"""
SCORE_TEXT = "def init():\n    pass\n\n\ndef run(data):\n    return data\n"


@dataclass
class FolderArtifacts:
    """``ModelArtifacts`` served from a local folder that mirrors a model and its run's outputs."""

    root: Path
    model_id: str = "bankmarketing-automl:4"

    def describe(self) -> dict:
        return {"name": "bankmarketing-automl", "version": 4, "id": self.model_id, "run_id": "AutoML_1_27",
                "experiment": "automl-bankmarketing", "workspace": "ws-lab-test", "tags": {}}

    def download_model(self, folder: Path) -> Path:
        target = folder / "model.pkl"
        shutil.copyfile(self.root / "model.pkl", target)
        return target

    def download_run_file(self, name: str, target: Path) -> None:
        source = self.root / name
        if not source.is_file():
            raise FileNotFoundError(f"UserError: File with path {name} was not found in run AutoML_1_27")
        shutil.copyfile(source, target)


@pytest.fixture
def artifacts(tmp_path) -> FolderArtifacts:
    root = tmp_path / "azure"
    (root / "outputs").mkdir(parents=True)
    model = LogisticRegression(random_state=SEED).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    joblib.dump(model, root / "model.pkl")
    (root / download.RUN_SCORING_FILE).write_text(SCORE_TEXT, encoding="utf-8")
    (root / download.RUN_CONDA_FILE).write_text(CONDA_TEXT, encoding="utf-8")
    return FolderArtifacts(root)


def test_lay_out_writes_the_five_files(artifacts, tmp_path):
    target = tmp_path / "model"
    manifest = download.download_to_folder(artifacts, target)
    assert sorted(path.name for path in target.iterdir()) == [
        "Dockerfile", "conda_env.yml", "manifest.json", "model.pkl", "score.py",
    ]
    assert (target / "score.py").read_text(encoding="utf-8") == SCORE_TEXT
    assert (target / "conda_env.yml").read_text(encoding="utf-8") == CONDA_TEXT
    assert joblib.load(target / "model.pkl").predict([[3.0]]).tolist() == [1]
    assert json.loads((target / "manifest.json").read_text(encoding="utf-8")) == manifest


def test_manifest_describes_the_folder(artifacts, tmp_path):
    manifest = download.download_to_folder(artifacts, tmp_path / "model")
    assert manifest["flavor"] == "azureml-automl"
    assert manifest["entry_script"] == "score.py"
    assert manifest["conda_file"] == "conda_env.yml"
    assert manifest["python"] == "3.9.19"
    assert manifest["source"]["kind"] == "azureml"
    assert manifest["source"]["id"] == "bankmarketing-automl:4"


def test_dockerfile_builds_from_conda_spec(artifacts, tmp_path):
    download.download_to_folder(artifacts, tmp_path / "model")
    dockerfile = (tmp_path / "model" / "Dockerfile").read_text(encoding="utf-8")
    assert "conda env create -n automl -f /tmp/conda_env.yml" in dockerfile
    assert "azmlinfsrv" in dockerfile


def test_second_download_reuses_folder(artifacts, tmp_path):
    first = download.download_to_folder(artifacts, tmp_path / "model")
    (artifacts.root / "model.pkl").unlink()  # a second download would fail now
    second = download.download_to_folder(artifacts, tmp_path / "model")
    assert second == first


def test_folder_with_other_model_needs_overwrite(artifacts, tmp_path):
    download.download_to_folder(artifacts, tmp_path / "model")
    other = FolderArtifacts(artifacts.root, model_id="bankmarketing-automl:5")
    with pytest.raises(CloudError, match="contains another model .*pass --overwrite"):
        download.download_to_folder(other, tmp_path / "model")
    manifest = download.download_to_folder(other, tmp_path / "model", overwrite=True)
    assert manifest["source"]["id"] == "bankmarketing-automl:5"


def test_missing_run_file_leaves_nothing(artifacts, tmp_path):
    (artifacts.root / download.RUN_CONDA_FILE).unlink()
    with pytest.raises(CloudError, match=r"downloading the scoring file and conda specification of run AutoML_1_27 "
                                         r"failed: .*was not found"):
        download.download_to_folder(artifacts, tmp_path / "model")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["azure"]


def test_download_registers_local_model_version(artifacts, tmp_path):
    workspace = Workspace(tmp_path / "ws")
    asset = download.download_to_workspace(artifacts, workspace)
    assert asset.ref == "bankmarketing-automl:1"
    assert asset.manifest["flavor"] == "azureml-automl"
    assert (asset.path / "model.pkl").is_file()
    assert (asset.path / "score.py").is_file()
    again = download.download_to_workspace(artifacts, workspace)
    assert again.ref == asset.ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [("dependencies:\n  - python=3.10\n", "3.10"), ("dependencies:\n- python>=3.8.13\n", "3.8.13"),
     ("dependencies:\n  - pip\n", None)],
)
def test_conda_python_version(text, expected):
    assert download.conda_python_version(text) == expected


def test_plan_lists_every_file_written(artifacts, tmp_path):
    target = tmp_path / "model"
    download.download_to_folder(artifacts, target)
    planned = download.plan_download("bankmarketing-automl:4", str(target)).settings["files"].split(", ")
    assert sorted(planned) == sorted(path.name for path in target.iterdir())


def test_plan_lists_every_file_of_a_local_version(artifacts, tmp_path):
    asset = download.download_to_workspace(artifacts, Workspace(tmp_path / "ws"))
    planned = download.plan_download("bankmarketing-automl:4", "local workspace").settings["files"].split(", ")
    assert sorted(planned) == sorted(path.name for path in asset.path.iterdir())
