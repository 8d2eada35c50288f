"""`train_model` end to end on a small stratified sample: registered files, manifest, model contract."""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest

from lab import data as lab_data
from lab.automl import AutoMLSettings
from lab.automl.runrecord import load_run
from lab.training import train_model
from lab.workspace import Workspace

SEED = 0
FAST_SETTINGS = dict(timeout_minutes=1.0, iterations=3, n_cross_validations=3, seed=SEED)


@pytest.fixture(scope="module")
def trained(sample_csv, tmp_path_factory):
    workspace = Workspace(tmp_path_factory.mktemp("workspace"))
    dataset = lab_data.register_dataset(workspace, sample_csv)
    asset, result = train_model(workspace, None, AutoMLSettings(**FAST_SETTINGS))
    return workspace, dataset, asset, result


def test_train_model_registers_model_files(trained):
    _, _, asset, _ = trained
    for name in ("model.pkl", "schema.json", "sample.json", "requirements.txt", "manifest.json"):
        assert (asset.path / name).is_file(), name


def test_train_model_manifest_fields(trained):
    _, dataset, asset, result = trained
    manifest = asset.manifest
    assert manifest["dataset"] == dataset.ref
    assert manifest["label"] == "y"
    assert manifest["classes"] == ["no", "yes"]
    assert manifest["primary_metric"] == "AUC_weighted"
    assert 0.5 < manifest["metrics"]["AUC_weighted"] <= 1.0
    assert 0 < manifest["threshold"] < 1
    assert manifest["threshold_objective"] == "accuracy"
    assert manifest["algorithm"] == result.best.algorithm
    assert manifest["run_id"] == result.run_id


def test_train_model_leaderboard_top_sorted(trained):
    _, _, asset, _ = trained
    board = asset.manifest["leaderboard_top"]
    scores = [row["AUC_weighted"] for row in board]
    assert 1 <= len(board) <= 10
    assert scores == sorted(scores, reverse=True)
    assert asset.manifest["metrics"]["AUC_weighted"] == scores[0]


def test_train_model_schema_in_training_order(trained, sample_csv):
    _, _, asset, _ = trained
    schema = json.loads((asset.path / "schema.json").read_text())
    header = list(pd.read_csv(sample_csv, nrows=0).columns)
    assert schema["label"] == "y"
    assert [column["name"] for column in schema["columns"]] == [name for name in header if name != "y"]


def test_train_model_sample_has_five_records_without_label(trained):
    _, _, asset, _ = trained
    records = json.loads((asset.path / "sample.json").read_text())["data"]
    assert len(records) == 5
    assert all("y" not in record for record in records)
    assert all(len(record) == 20 for record in records)


def test_model_predicts_labels_for_reordered_records(trained, sample_csv):
    _, _, asset, _ = trained
    model = joblib.load(asset.path / "model.pkl")
    frame = pd.read_csv(sample_csv).drop(columns=["y"]).head(50)
    records = [dict(reversed(list(record.items()))) for record in frame.to_dict(orient="records")]
    predictions = model.predict(pd.DataFrame(records))
    assert set(predictions) <= {"yes", "no"}
    assert list(model.classes_) == ["no", "yes"]
    assert np.array_equal(predictions, model.predict(frame))


def test_model_predict_proba_shape(trained, sample_csv):
    _, _, asset, _ = trained
    model = joblib.load(asset.path / "model.pkl")
    frame = pd.read_csv(sample_csv).drop(columns=["y"]).head(20)
    proba = model.predict_proba(frame)
    assert proba.shape == (20, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_model_loads_in_fresh_interpreter(trained):
    _, _, asset, _ = trained
    code = (
        "import json, sys, joblib, pandas as pd\n"
        "model = joblib.load(sys.argv[1] + '/model.pkl')\n"
        "records = json.load(open(sys.argv[1] + '/sample.json'))['data']\n"
        "print(json.dumps(list(model.predict(pd.DataFrame(records)))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code, str(asset.path)], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert set(json.loads(completed.stdout)) <= {"yes", "no"}


def test_train_model_writes_run_record(trained):
    workspace, _, asset, result = trained
    run = load_run(workspace.runs_dir / result.run_id)
    children = list((workspace.runs_dir / result.run_id / "children").glob("*.json"))
    assert run["status"] == "Completed"
    assert run["registered_model"] == asset.ref
    assert run["stop_reason"] == "iterations"
    assert len(children) == len(result.leaderboard)
    assert {row["name"] for row in run["guardrails"]["results"]} >= {"class_balancing_detection",
                                                                     "target_leakage_detection"}
