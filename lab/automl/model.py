"""The fitted model that ``lab train`` registers, and the ensembles it may contain.

These classes are pickled into ``model.pkl``, so they must keep loading with the project's
dependencies only: they live in this installed package and hold scikit-learn, imbalanced-learn
and LightGBM objects, nothing else.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from lab.automl.featurization import ColumnRoles, prepare_frame
from lab.automl.metrics import PROBABILITY_CLIP, predict_labels


class AutoMLModel(ClassifierMixin, BaseEstimator):
    """A fitted pipeline behind the registered-model contract.

    It takes a DataFrame (or records) with the feature columns by name, in any order, and returns
    the original class labels. ``estimator`` works on encoded labels 0..k-1, where ``classes[i]``
    is the original label of code ``i``. ``threshold`` (binary tasks only) is the probability of
    ``classes[1]`` at or above which ``predict`` returns ``classes[1]``; None means argmax.
    """

    def __init__(self, estimator=None, roles: ColumnRoles | None = None, classes=None,
                 threshold: float | None = None, algorithm: str | None = None):
        self.estimator = estimator
        self.roles = roles
        self.classes = classes
        self.threshold = threshold
        self.algorithm = algorithm

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self.roles.columns, dtype=object)

    def fit(self, X, y):
        """Fit a clone of ``estimator`` on ``X`` and the original labels ``y``."""
        classes, y_encoded = np.unique(np.asarray(y), return_inverse=True)
        self.classes = list(classes)
        self.estimator = clone(self.estimator).fit(prepare_frame(X, self.roles), y_encoded)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Return class probabilities of shape (n_samples, n_classes), columns in ``classes_`` order."""
        return self.estimator.predict_proba(prepare_frame(X, self.roles))

    def predict(self, X) -> np.ndarray:
        """Return original class labels, applying ``threshold`` for binary tasks."""
        codes = predict_labels(self.predict_proba(X), self.threshold)
        return self.classes_[codes]


class VotingEnsemble(ClassifierMixin, BaseEstimator):
    """Soft voting: the weighted mean of the members' probabilities.

    ``estimators`` are pipelines on prepared frames and encoded labels; ``weights`` are how
    often greedy ensemble selection picked each member.
    """

    def __init__(self, estimators=None, weights=None):
        self.estimators = estimators
        self.weights = weights

    def fit(self, X, y):
        self.estimators = [clone(estimator).fit(X, y) for estimator in self.estimators]
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        weights = np.asarray(self.weights, dtype=float)
        stacked = np.stack([estimator.predict_proba(X) for estimator in self.estimators])
        return np.tensordot(weights / weights.sum(), stacked, axes=1)

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


def stack_features(probas: list[np.ndarray]) -> np.ndarray:
    """Return the meta-learner's inputs: log-odds of each member's class probabilities.

    Binary tasks use one column per member (the positive class); others use one per class.
    """
    columns = []
    for proba in probas:
        clipped = np.clip(proba, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
        if proba.shape[1] == 2:
            columns.append(np.log(clipped[:, 1] / clipped[:, 0])[:, None])
        else:
            columns.append(np.log(clipped))
    return np.hstack(columns)


class StackEnsemble(ClassifierMixin, BaseEstimator):
    """Stacking: a logistic-regression meta-learner on the members' out-of-fold log-odds."""

    def __init__(self, estimators=None, meta_learner=None):
        self.estimators = estimators
        self.meta_learner = meta_learner

    def fit(self, X, y, cv: int = 5, seed: int = 0):
        """Fit the meta-learner on ``cv``-fold out-of-fold probabilities, then the members on all rows."""
        folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
        probas = [cross_val_predict(clone(estimator), X, y, cv=folds, method="predict_proba")
                  for estimator in self.estimators]
        self.meta_learner = clone(self.meta_learner).fit(stack_features(probas), y)
        self.estimators = [clone(estimator).fit(X, y) for estimator in self.estimators]
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        features = stack_features([estimator.predict_proba(X) for estimator in self.estimators])
        return self.meta_learner.predict_proba(features)

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)
