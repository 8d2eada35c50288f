"""Ensembles built from the candidates' out-of-fold probabilities.

``greedy_selection`` is Caruana et al.'s ensemble selection ("Ensemble Selection from Libraries
of Models", ICML 2004): start from the best model and repeatedly add, with replacement, the model
whose addition to the averaged probabilities scores best. ``fit_stack`` trains a logistic
regression meta-learner on the members' out-of-fold log-odds.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from lab.automl.metrics import PROBABILITY_CLIP, is_better, score_metric
from lab.automl.model import stack_features

STACK_FOLDS = 5
STACK_C = 1.0


def greedy_selection(probas: list[np.ndarray], y: np.ndarray, metric: str, iterations: int) -> np.ndarray:
    """Return how many times each model was selected (an integer weight per model).

    ``probas[i]`` has shape (n_samples, n_classes) for the same rows as ``y``. The first pick
    is the best single model. Ties on ``metric`` go to the lower log loss, then to the lower
    index, so the result is deterministic.
    """
    counts = np.zeros(len(probas), dtype=int)
    blend_sum = np.zeros_like(probas[0], dtype=float)
    for step in range(iterations):
        best_index, best_score, best_loss = None, None, None
        for index, proba in enumerate(probas):
            blended = (blend_sum + proba) / (step + 1)
            score = score_metric(metric, y, blended)
            loss = _log_loss(y, blended)
            tied = best_score is not None and np.isclose(score, best_score, rtol=0, atol=1e-12)
            if best_index is None or (tied and loss < best_loss) or (not tied and is_better(metric, score, best_score)):
                best_index, best_score, best_loss = index, score, loss
        counts[best_index] += 1
        blend_sum += probas[best_index]
    return counts


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    picked = np.clip(proba[np.arange(len(y)), y], PROBABILITY_CLIP, 1.0)
    return float(-np.mean(np.log(picked)))


def blend(probas: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Return the weighted mean of the probability matrices."""
    weights = np.asarray(weights, dtype=float)
    return np.tensordot(weights / weights.sum(), np.stack(probas), axes=1)


def stack_oof(probas: list[np.ndarray], y: np.ndarray, seed: int) -> np.ndarray:
    """Return out-of-fold meta-learner probabilities on the rows of ``y``.

    The meta-learner is scored by its own cross-validation over the out-of-fold rows, so its
    score is comparable with the members' scores.
    """
    features = stack_features(probas)
    out = np.zeros_like(probas[0], dtype=float)
    folds = StratifiedKFold(STACK_FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(features, y):
        meta = _meta_learner(seed).fit(features[train], y[train])
        out[test] = meta.predict_proba(features[test])
    return out


def fit_stack(probas: list[np.ndarray], y: np.ndarray, seed: int) -> LogisticRegression:
    """Return the meta-learner fitted on all out-of-fold rows."""
    return _meta_learner(seed).fit(stack_features(probas), y)


def _meta_learner(seed: int) -> LogisticRegression:
    return LogisticRegression(C=STACK_C, max_iter=1000, random_state=seed)
