"""The fitted model that ``lab train`` registers, and the ensembles it may contain.

These classes are pickled into ``model.pkl``, so they must keep loading with the project's
dependencies only: they live in this installed package and hold scikit-learn, imbalanced-learn
and LightGBM objects, nothing else.
"""

from __future__ import annotations

import pickle

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


def _split_pipeline(member):
    """Return a fitted pipeline's ``(transform steps, final estimator)``, or None for other estimators.

    Resampling steps (imbalanced-learn samplers) are left out, as the pipeline skips them when
    it predicts.
    """
    steps = getattr(member, "steps", None)
    if not isinstance(steps, list) or len(steps) < 2:
        return None
    transforms = []
    for _, step in steps[:-1]:
        if step is None or (isinstance(step, str) and step == "passthrough") or hasattr(step, "fit_resample"):
            continue
        if not hasattr(step, "transform"):
            return None
        transforms.append(step)
    return transforms, steps[-1][1]


def featurization_groups(estimators) -> list[int | None]:
    """Return for each member the index of its group of identical fitted transform steps, or None.

    Members whose transform steps pickle to the same bytes contain the same fitted state, so they
    transform any input to the same array. None marks a member that is not a pipeline, or whose
    steps cannot be pickled; it is scored as a whole.
    """
    keys: dict[bytes, int] = {}
    groups: list[int | None] = []
    for member in estimators:
        split = _split_pipeline(member)
        if split is None:
            groups.append(None)
            continue
        try:
            key = pickle.dumps(split[0], protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            groups.append(None)
            continue
        groups.append(keys.setdefault(key, len(keys)))
    return groups


class _SharedFeaturization:
    """Members' ``predict_proba`` that transforms the input once per group of identical featurizers.

    ``lab train`` refits every ensemble member on the same rows, so members with the same
    featurizer kind contain identical fitted featurizers. A one-record request spends most of a
    member's time in its ColumnTransformer, so transforming once per group saves that time for
    every further member of the group. The predictions are the same as calling each member's
    pipeline. The grouping is computed on the first call and kept until ``estimators`` is replaced.
    A member refitted in place keeps its old group, so refit an ensemble through its ``fit``, which
    fits clones.
    """

    _PLAN = "_featurization_plan"

    def _groups(self) -> list[int | None]:
        members = list(self.estimators)
        cached = self.__dict__.get(self._PLAN)
        if cached is not None and len(cached[0]) == len(members) and all(
                old is new for old, new in zip(cached[0], members)):
            return cached[1]
        groups = featurization_groups(members)
        # The members themselves are kept, not their ids, so that the id of a freed member never
        # matches a new one.
        self.__dict__[self._PLAN] = (members, groups)
        return groups

    def _member_probas(self, X) -> list[np.ndarray]:
        transformed: dict[int, object] = {}
        probas = []
        for member, group in zip(self.estimators, self._groups()):
            if group is None:
                probas.append(member.predict_proba(X))
                continue
            transforms, final = _split_pipeline(member)
            if group not in transformed:
                Xt = X
                for step in transforms:
                    Xt = step.transform(Xt)
                transformed[group] = Xt
            probas.append(final.predict_proba(transformed[group]))
        return probas

    def __getstate__(self):
        # A copy, because object.__getstate__ returns the instance's own __dict__.
        state = dict(super().__getstate__())
        state.pop(self._PLAN, None)
        return state


class VotingEnsemble(_SharedFeaturization, ClassifierMixin, BaseEstimator):
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
        stacked = np.stack(self._member_probas(X))
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


class StackEnsemble(_SharedFeaturization, ClassifierMixin, BaseEstimator):
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
        features = stack_features(self._member_probas(X))
        return self.meta_learner.predict_proba(features)

    def predict(self, X) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)
