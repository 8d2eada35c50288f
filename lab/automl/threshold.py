"""Tuning the decision threshold of a binary classifier on out-of-fold probabilities."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

GRID = np.round(np.arange(0.02, 0.981, 0.005), 4)
DEFAULT_THRESHOLD = 0.5
# Objectives whose best threshold may cost accuracy, so an accuracy limit applies to them.
LIMITED_OBJECTIVES = ("f1", "balanced_accuracy")
# Floating-point slack when comparing an accuracy with the limit.
_ACCURACY_SLACK = 1e-12


def threshold_score(objective: str, y: np.ndarray, positive_proba: np.ndarray, threshold: float) -> float:
    """Return ``objective`` ("accuracy", "f1" or "balanced_accuracy") at ``threshold``."""
    y_pred = (positive_proba >= threshold).astype(int)
    if objective == "accuracy":
        return float(np.mean(y_pred == y))
    if objective == "f1":
        return float(skm.f1_score(y, y_pred, zero_division=0))
    if objective == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y, y_pred))
    raise ValueError(f"unknown threshold objective {objective!r}")


def accuracy_standard_error(accuracy: float, rows: int) -> float:
    """Return the binomial standard error of an accuracy measured on ``rows`` rows."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(rows, 1))


def tune_threshold(objective: str, y: np.ndarray, positive_proba: np.ndarray,
                   max_accuracy_loss: float | None = None) -> tuple[float, float]:
    """Return the grid threshold that maximizes ``objective``, and its score.

    With ``max_accuracy_loss`` (a fraction such as 0.002), only thresholds whose accuracy is at
    most that far below the best accuracy on the grid are eligible. It applies to "f1" and
    "balanced_accuracy", whose unconstrained best tends to trade several points of accuracy for
    recall. Ties go to the threshold closest to 0.5, so a flat objective keeps the usual rule.
    """
    candidates = sorted({DEFAULT_THRESHOLD, *map(float, GRID)}, key=lambda value: (abs(value - DEFAULT_THRESHOLD), value))
    if max_accuracy_loss is not None and objective in LIMITED_OBJECTIVES:
        accuracies = {threshold: threshold_score("accuracy", y, positive_proba, threshold) for threshold in candidates}
        floor = max(accuracies.values()) - max_accuracy_loss - _ACCURACY_SLACK
        candidates = [threshold for threshold in candidates if accuracies[threshold] >= floor]

    best_threshold, best_score = candidates[0], threshold_score(objective, y, positive_proba, candidates[0])
    for threshold in candidates[1:]:
        score = threshold_score(objective, y, positive_proba, threshold)
        if score > best_score:
            best_threshold, best_score = threshold, score
    return best_threshold, best_score
