"""`write_figures` on a model trained on a synthetic frame: every figure is a PNG file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab import data as lab_data
from lab.automl import AutoMLSettings, run_automl
from lab.automl.report import write_figures

SEED = 0
ROWS = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = {"roc", "precision_recall", "calibration", "confusion_matrix", "feature_importance"}


def synthetic(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < 0.25
    return pd.DataFrame({
        "signal": rng.normal(size=rows) + 1.5 * positive,
        "kind": rng.choice(["a", "b"], size=rows),
        "label": np.where(positive, "yes", "no"),
    })


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    frame = synthetic(ROWS, SEED)
    schema = {"label": "label", "columns": [c.to_json() for c in lab_data.infer_schema(frame, "label")]}
    run_dir = tmp_path_factory.mktemp("run")
    settings = AutoMLSettings(iterations=2, n_cross_validations=3, seed=SEED, threshold_objective="f1",
                              allowed_models=("LogisticRegression",))
    result = run_automl(frame.drop(columns=["label"]), frame["label"], schema, settings, run_dir=run_dir)
    return result, run_dir


def test_write_figures_writes_pngs(trained, tmp_path):
    result, run_dir = trained
    held_out = synthetic(200, SEED + 1)
    paths = write_figures(run_dir, result.model, held_out.drop(columns=["label"]), held_out["label"], tmp_path)
    assert set(paths) == FIGURES | {"leaderboard"}
    for name, path in paths.items():
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name


def test_write_figures_without_run_record(trained, tmp_path):
    result, _ = trained
    held_out = synthetic(100, SEED + 2)
    paths = write_figures(None, result.model, held_out.drop(columns=["label"]), held_out["label"], tmp_path)
    assert set(paths) == FIGURES


def test_write_figures_rejects_unknown_label(trained, tmp_path):
    result, _ = trained
    held_out = synthetic(50, SEED + 3)
    held_out.loc[0, "label"] = "maybe"
    with pytest.raises(ValueError, match="not classes of the model"):
        write_figures(None, result.model, held_out.drop(columns=["label"]), held_out["label"], tmp_path)
