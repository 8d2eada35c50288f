"""Tuning the decision threshold of a binary classifier on out-of-fold probabilities."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

GRID = np.round(np.arange(0.02, 0.981, 0.005), 4)
DEFAULT_THRESHOLD = 0.5


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


def tune_threshold(objective: str, y: np.ndarray, positive_proba: np.ndarray) -> tuple[float, float]:
    """Return the grid threshold that maximizes ``objective``, and its score.

    Ties go to the threshold closest to 0.5, so a flat objective keeps the usual decision rule.
    """
    best_threshold, best_score = DEFAULT_THRESHOLD, threshold_score(objective, y, positive_proba, DEFAULT_THRESHOLD)
    for threshold in sorted(GRID, key=lambda value: abs(value - DEFAULT_THRESHOLD)):
        score = threshold_score(objective, y, positive_proba, threshold)
        if score > best_score:
            best_threshold, best_score = float(threshold), score
    return best_threshold, best_score
