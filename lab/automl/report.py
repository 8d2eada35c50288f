"""Figures of a trained model for the run report: ROC, precision-recall, calibration, confusion
matrix, permutation feature importance, and the run's leaderboard.

Figures are drawn with ``matplotlib.figure.Figure`` directly, so nothing touches pyplot's global
state or needs a display.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from lab.automl.metrics import score_metric
from lab.workspace import read_json

logger = logging.getLogger(__name__)

PERMUTATION_MAX_ROWS = 5_000
PERMUTATION_REPEATS = 3
CALIBRATION_BINS = 10
LEADERBOARD_BARS = 15
SEED = 0
DPI = 110


def write_figures(run_dir: Path | None, model, X: pd.DataFrame, y, out_dir: Path) -> dict[str, Path]:
    """Draw the figures of ``model`` evaluated on features ``X`` and original labels ``y``.

    ``X`` and ``y`` should be data the model was not trained on (the held-out test file).
    ``run_dir`` (optional) adds a leaderboard chart from the run record. Returns PNG paths by
    figure name: ``roc``, ``precision_recall``, ``calibration``, ``confusion_matrix``,
    ``feature_importance`` and, with a run record, ``leaderboard``. Raises ``ValueError`` when
    ``y`` contains a label that is not one of the model's classes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = list(model.classes_)
    y_codes = _encode(y, classes)
    proba = model.predict_proba(X)
    y_pred = _encode(model.predict(X), classes)

    drawings = {
        "roc": lambda: _roc(y_codes, proba, classes),
        "precision_recall": lambda: _precision_recall(y_codes, proba, classes),
        "calibration": lambda: _calibration(y_codes, proba, classes),
        "confusion_matrix": lambda: _confusion(y_codes, y_pred, classes, getattr(model, "threshold", None)),
        "feature_importance": lambda: _importance(model, X, y_codes, classes),
    }
    if run_dir is not None and (Path(run_dir) / "leaderboard.json").is_file():
        drawings["leaderboard"] = lambda: _leaderboard(Path(run_dir))

    paths = {}
    for name, draw in drawings.items():
        figure = draw()
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
        paths[name] = path
    logger.info("wrote %d figures to %s", len(paths), out_dir)
    return paths


def _encode(labels, classes: list) -> np.ndarray:
    index = {str(label): code for code, label in enumerate(classes)}
    values = [str(label) for label in np.asarray(labels)]
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not classes of the model ({classes})")
    return np.array([index[value] for value in values])


def _one_vs_rest(classes: list) -> list[int]:
    """Return the class codes to draw curves for: the positive class only when there are two."""
    return [1] if len(classes) == 2 else list(range(len(classes)))


def _roc(y: np.ndarray, proba: np.ndarray, classes: list) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for code in _one_vs_rest(classes):
        fpr, tpr, _ = roc_curve(y == code, proba[:, code])
        auc = score_metric("AUC_weighted", (y == code).astype(int), np.column_stack([1 - proba[:, code], proba[:, code]]))
        axes.plot(fpr, tpr, label=f"{classes[code]} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    return figure


def _precision_recall(y: np.ndarray, proba: np.ndarray, classes: list) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for code in _one_vs_rest(classes):
        precision, recall, _ = precision_recall_curve(y == code, proba[:, code])
        axes.plot(recall, precision, label=f"{classes[code]} (base rate {np.mean(y == code):.3f})")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return figure


def _calibration(y: np.ndarray, proba: np.ndarray, classes: list) -> Figure:
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for code in _one_vs_rest(classes):
        observed, predicted = calibration_curve(y == code, proba[:, code], n_bins=CALIBRATION_BINS,
                                                strategy="quantile")
        axes.plot(predicted, observed, marker="o", label=str(classes[code]))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    axes.set(xlabel="mean predicted probability", ylabel="observed frequency",
             title=f"Calibration ({CALIBRATION_BINS} quantile bins)")
    axes.legend(loc="upper left")
    return figure


def _confusion(y: np.ndarray, y_pred: np.ndarray, classes: list, threshold: float | None) -> Figure:
    matrix = confusion_matrix(y, y_pred, labels=list(range(len(classes))))
    figure = Figure(figsize=(4.5, 4))
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color)
    names = [str(label) for label in classes]
    axes.set_xticks(range(len(classes)), names)
    axes.set_yticks(range(len(classes)), names)
    rule = f"threshold {threshold:.3f}" if threshold is not None else "most probable class"
    axes.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix ({rule})")
    return figure


def _importance(model, X: pd.DataFrame, y: np.ndarray, classes: list) -> Figure:
    """Permutation importance: the drop in AUC_weighted when one input column is shuffled."""
    columns = [name for name in getattr(model, "feature_names_in_", X.columns) if name in X.columns]
    X = X[columns]
    if len(X) > PERMUTATION_MAX_ROWS:
        rows = np.random.default_rng(SEED).choice(len(X), PERMUTATION_MAX_ROWS, replace=False)
        X, y = X.iloc[rows], y[rows]

    def auc(estimator, X_part, y_part) -> float:
        return score_metric("AUC_weighted", y_part, estimator.predict_proba(X_part))

    result = permutation_importance(model, X, y, scoring=auc, n_repeats=PERMUTATION_REPEATS, random_state=SEED)
    order = np.argsort(result.importances_mean)
    figure = Figure(figsize=(6, max(3, 0.3 * len(columns))))
    axes = figure.subplots()
    axes.barh([columns[index] for index in order], result.importances_mean[order],
              xerr=result.importances_std[order], color="tab:blue")
    axes.set(xlabel="decrease in AUC_weighted when shuffled", title="Permutation feature importance")
    return figure


def _leaderboard(run_dir: Path) -> Figure:
    run = read_json(run_dir / "run.json")
    metric = run.get("primary_metric", "AUC_weighted")
    rows = read_json(run_dir / "leaderboard.json")[:LEADERBOARD_BARS]
    labels = [f"#{row['iteration']} {row['algorithm']}" for row in rows][::-1]
    scores = [row["metrics"].get(metric) or 0.0 for row in rows][::-1]
    figure = Figure(figsize=(6, max(3, 0.3 * len(rows))))
    axes = figure.subplots()
    axes.barh(labels, scores, color="tab:green")
    low = min(scores) if scores else 0.0
    axes.set_xlim(max(0.0, low - 0.02), max(scores, default=1.0) + 0.005)
    axes.set(xlabel=f"cross-validated {metric}", title=f"Leaderboard of run {run.get('run_id', '')}")
    return figure
