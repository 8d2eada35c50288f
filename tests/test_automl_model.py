"""The ensembles' shared featurization on real pipelines fitted on a sample of the Bank Marketing
training file: the same predictions as scoring each member's pipeline, with fewer transforms."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lab import data as lab_data
from lab.automl.candidates import CandidateSpec, build_pipeline
from lab.automl.ensemble import fit_stack
from lab.automl.featurization import prepare_frame, roles_from_schema
from lab.automl.model import AutoMLModel, StackEnsemble, VotingEnsemble, featurization_groups, stack_features

SEED = 0
FIT_ROWS = 1_500
# Three members on the ordinal featurizer (one of them with SMOTENC resampling) and one on the
# one-hot featurizer, as `lab train` builds them, with few trees so that fitting takes seconds.
MEMBER_SPECS = [
    CandidateSpec("LightGBM", params=dict(n_estimators=40, num_leaves=15)),
    CandidateSpec("HistGradientBoosting", params=dict(max_iter=40)),
    CandidateSpec("LightGBM", imbalance="smote", params=dict(n_estimators=30, num_leaves=7)),
    CandidateSpec("LogisticRegression", params=dict(C=1.0)),
]
WEIGHTS = [3, 1, 1, 2]


@pytest.fixture(scope="module")
def fitted(sample_csv):
    """Members refitted on the same rows, as ``lab train`` refits an ensemble, and the rows to score."""
    frame = lab_data.read_csv(sample_csv)
    schema = {"label": "y", "columns": [column.to_json() for column in lab_data.infer_schema(frame, "y")]}
    roles = roles_from_schema(schema)
    classes, codes = np.unique(frame["y"], return_inverse=True)
    X = prepare_frame(frame.drop(columns=["y"]), roles)
    X_fit, y_fit = X.iloc[:FIT_ROWS], codes[:FIT_ROWS]
    members = [build_pipeline(spec, roles, len(classes), SEED, 1).fit(X_fit, y_fit) for spec in MEMBER_SPECS]
    return {
        "roles": roles, "classes": list(classes), "members": members,
        "X_fit": X_fit, "y_fit": y_fit, "X_score": X.iloc[FIT_ROWS:],
    }


def records_to_score(fitted) -> list[pd.DataFrame]:
    """Frames to score: the rows not fitted on, one row alone, and one row with a missing and an unseen value."""
    rows = fitted["X_score"]
    odd = rows.iloc[:1].copy()
    odd[fitted["roles"].numeric[0]] = np.nan
    odd[fitted["roles"].categorical[0]] = "a category never seen in training"
    return [rows, rows.iloc[:1], odd]


def voting_reference(members, weights, X) -> np.ndarray:
    """Voting probabilities from each member's whole pipeline, as before the shared featurization."""
    stacked = np.stack([member.predict_proba(X) for member in members])
    weights = np.asarray(weights, dtype=float)
    return np.tensordot(weights / weights.sum(), stacked, axes=1)


def test_groups_follow_fitted_featurizers(fitted):
    assert featurization_groups(fitted["members"]) == [0, 0, 0, 1]


def test_groups_split_featurizers_fitted_on_other_rows(fitted):
    other = build_pipeline(MEMBER_SPECS[0], fitted["roles"], 2, SEED, 1).fit(
        fitted["X_fit"].iloc[:500], fitted["y_fit"][:500])
    assert featurization_groups([*fitted["members"], other]) == [0, 0, 0, 1, 2]


def test_groups_leave_non_pipelines_alone(fitted):
    plain = LogisticRegression().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    assert featurization_groups([plain, fitted["members"][0]]) == [None, 0]


def test_voting_shared_featurization_same_predictions(fitted):
    ensemble = VotingEnsemble(fitted["members"], WEIGHTS)
    for X in records_to_score(fitted):
        np.testing.assert_array_equal(ensemble.predict_proba(X), voting_reference(fitted["members"], WEIGHTS, X))


def test_voting_transforms_once_per_group(fitted, monkeypatch):
    ensemble = VotingEnsemble(fitted["members"], WEIGHTS)
    record = fitted["X_score"].iloc[:1]
    # The first call groups the members; the counting wrappers come after, as they cannot be pickled.
    ensemble.predict_proba(record)
    calls = []
    for member in fitted["members"]:
        featurizer = member.steps[0][1]
        monkeypatch.setattr(featurizer, "transform",
                            lambda X, _original=featurizer.transform: calls.append(1) or _original(X))
    ensemble.predict_proba(record)
    assert len(calls) == 2


def test_stack_shared_featurization_same_predictions(fitted):
    members = fitted["members"]
    X_fit, y_fit = fitted["X_fit"], fitted["y_fit"]
    meta = fit_stack([member.predict_proba(X_fit) for member in members], y_fit, SEED)
    ensemble = StackEnsemble(members, meta)
    for X in records_to_score(fitted):
        expected = meta.predict_proba(stack_features([member.predict_proba(X) for member in members]))
        np.testing.assert_array_equal(ensemble.predict_proba(X), expected)


def test_registered_model_same_labels_after_pickle(fitted):
    model = AutoMLModel(VotingEnsemble(fitted["members"], WEIGHTS), fitted["roles"], fitted["classes"],
                        threshold=0.3, algorithm="VotingEnsemble")
    X = fitted["X_score"]
    before = model.predict(X)
    restored = pickle.loads(pickle.dumps(model))
    assert "_featurization_plan" not in restored.estimator.__dict__
    np.testing.assert_array_equal(restored.predict(X), before)
    np.testing.assert_array_equal(restored.predict_proba(X),
                                  voting_reference(fitted["members"], WEIGHTS, prepare_frame(X, fitted["roles"])))


def test_new_member_list_regroups(fitted):
    members = fitted["members"]
    ensemble = VotingEnsemble(members, WEIGHTS)
    X = fitted["X_score"]
    ensemble.predict_proba(X)
    ensemble.set_params(estimators=[members[3], members[0]], weights=[1, 1])
    np.testing.assert_array_equal(ensemble.predict_proba(X), voting_reference([members[3], members[0]], [1, 1], X))
