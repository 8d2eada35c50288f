"""Classification metrics under Azure AutoML's names.

Inputs are encoded labels ``y`` (integers 0..k-1, as ``np.unique`` orders the classes) and a
probability matrix of shape (n_samples, k). For binary tasks the positive class is index 1,
the second class in sorted order (``"yes"`` for yes/no labels, ``1`` for 0/1 labels).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

# Metrics where lower is better; every other metric is maximized.
LOWER_IS_BETTER = frozenset({"log_loss"})
PROBABILITY_CLIP = 1e-15


def predict_labels(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Return encoded labels: argmax, or for two classes ``proba[:, 1] >= threshold``."""
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(int)
    return np.argmax(proba, axis=1)


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float | None = None) -> dict[str, float]:
    """Return every metric the leaderboard shows for one set of predictions.

    Label metrics use ``threshold`` on the positive-class probability for binary tasks, argmax
    otherwise. A metric that is undefined on these labels (one class only) is NaN.
    """
    n_classes = proba.shape[1]
    labels = np.arange(n_classes)
    y_pred = predict_labels(proba, threshold)
    clipped = np.clip(proba, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macro_recall = skm.recall_score(y, y_pred, labels=labels, average="macro", zero_division=0)
        out = {
            "accuracy": skm.accuracy_score(y, y_pred),
            "AUC_weighted": _auc(y, proba, labels, "weighted"),
            "AUC_macro": _auc(y, proba, labels, "macro"),
            "average_precision_score_weighted": _average_precision(y, proba, labels),
            "norm_macro_recall": (macro_recall - 1 / n_classes) / (1 - 1 / n_classes),
            "precision_score_weighted": skm.precision_score(y, y_pred, labels=labels, average="weighted", zero_division=0),
            "recall_score_weighted": skm.recall_score(y, y_pred, labels=labels, average="weighted", zero_division=0),
            "f1_score_weighted": skm.f1_score(y, y_pred, labels=labels, average="weighted", zero_division=0),
            "balanced_accuracy": macro_recall,
            "log_loss": skm.log_loss(y, clipped, labels=labels),
        }
        if n_classes == 2:
            out["f1_score_binary"] = skm.f1_score(y, y_pred, pos_label=1, zero_division=0)
            out["precision_score_binary"] = skm.precision_score(y, y_pred, pos_label=1, zero_division=0)
            out["recall_score_binary"] = skm.recall_score(y, y_pred, pos_label=1, zero_division=0)
    return {name: float(value) for name, value in out.items()}


def _auc(y: np.ndarray, proba: np.ndarray, labels: np.ndarray, average: str) -> float:
    if len(np.unique(y)) < 2:
        return float("nan")
    if len(labels) == 2:
        # Both one-vs-rest curves of a binary task have the same area, so every average equals it.
        return skm.roc_auc_score(y, proba[:, 1])
    present = np.unique(y)
    y_bin = label_binarize(y, classes=labels)[:, present]
    return skm.roc_auc_score(y_bin, proba[:, present], average=average)


def _average_precision(y: np.ndarray, proba: np.ndarray, labels: np.ndarray) -> float:
    y_bin = label_binarize(y, classes=labels)
    if len(labels) == 2:
        y_bin = np.column_stack([1 - y_bin[:, 0], y_bin[:, 0]])
    scores = []
    weights = []
    for index in labels:
        support = y_bin[:, index].sum()
        if support == 0:
            continue
        scores.append(skm.average_precision_score(y_bin[:, index], proba[:, index]))
        weights.append(support)
    return float(np.average(scores, weights=weights)) if scores else float("nan")


def is_better(metric: str, candidate: float, incumbent: float | None) -> bool:
    """Return whether ``candidate`` beats ``incumbent`` on ``metric`` (NaN never wins)."""
    if candidate is None or np.isnan(candidate):
        return False
    if incumbent is None or np.isnan(incumbent):
        return True
    return candidate < incumbent if metric in LOWER_IS_BETTER else candidate > incumbent


def sort_key(metric: str, value: float) -> float:
    """Return a key that sorts better scores first with ``sorted``; NaN goes last."""
    if value is None or np.isnan(value):
        return float("inf")
    return value if metric in LOWER_IS_BETTER else -value


def mean_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over folds, ignoring folds where it is NaN."""
    names = per_fold[0].keys()
    out = {}
    for name in names:
        values = np.array([fold[name] for fold in per_fold], dtype=float)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    return out


def score_metric(name: str, y: np.ndarray, proba: np.ndarray, threshold: float | None = None) -> float:
    """Return one metric; cheaper than ``classification_metrics`` inside selection loops."""
    labels = np.arange(proba.shape[1])
    if name == "AUC_weighted":
        return float(_auc(y, proba, labels, "weighted"))
    if name == "average_precision_score_weighted":
        return _average_precision(y, proba, labels)
    y_pred = predict_labels(proba, threshold)
    if name == "accuracy":
        return float(np.mean(y_pred == y))
    if name == "norm_macro_recall":
        macro_recall = skm.recall_score(y, y_pred, labels=labels, average="macro", zero_division=0)
        return float((macro_recall - 1 / len(labels)) / (1 - 1 / len(labels)))
    if name == "precision_score_weighted":
        return float(skm.precision_score(y, y_pred, labels=labels, average="weighted", zero_division=0))
    return classification_metrics(y, proba, threshold)[name]
