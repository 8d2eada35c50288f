"""The AutoML parts on small synthetic frames: guardrails, resampling, ensembles, exit criteria,
reproducibility and interruption. No test here needs the Bank Marketing files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from imblearn import FunctionSampler
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from lab import data as lab_data
from lab.automl import AutoMLSettings, run_automl
from lab.automl import candidates as candidates_module
from lab.automl import search as search_module
from lab.automl.ensemble import greedy_selection
from lab.automl.featurization import prepare_frame, roles_from_schema
from lab.automl.candidates import build_pipeline
from lab.automl.guardrails import run_guardrails
from lab.automl.metrics import classification_metrics
from lab.automl.model import AutoMLModel, StackEnsemble
from lab.automl.threshold import tune_threshold
from lab.errors import TrainingError
from lab.training import train_model
from lab.workspace import Workspace

SEED = 0
ROWS = 400
MINORITY_SHARE = 0.15
# Short runs: three folds and a few candidates of the fast families.
FAST = dict(n_cross_validations=3, timeout_minutes=2.0, seed=SEED, allowed_models=("LogisticRegression", "LightGBM"))


def synthetic_frame(rows: int = ROWS, minority_share: float = MINORITY_SHARE, seed: int = SEED) -> pd.DataFrame:
    """A label that depends on one numeric and one categorical column, plus a noise column."""
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < minority_share
    signal = rng.normal(size=rows) + 1.5 * positive
    color = np.where(positive & (rng.random(rows) < 0.6), "red", rng.choice(["blue", "green", "red"], size=rows))
    return pd.DataFrame({
        "signal": signal,
        "noise": rng.normal(size=rows),
        "count": rng.integers(0, 10, size=rows),
        "color": color,
        "label": np.where(positive, "yes", "no"),
    })


def split(frame: pd.DataFrame, label: str = "label"):
    schema = {"label": label, "columns": [column.to_json() for column in lab_data.infer_schema(frame, label)]}
    return frame.drop(columns=[label]), frame[label], schema


def guardrails_of(frame: pd.DataFrame, label: str = "label", dropped: tuple = ()):
    X, y, schema = split(frame, label)
    classes, codes = np.unique(y, return_inverse=True)
    types = {column["name"]: column["type"] for column in schema["columns"]}
    report = run_guardrails(X, codes, list(classes), types, leakage_auc=0.95, seed=SEED, dropped=dropped)
    return report, {result.name: result for result in report.results}


# -- guardrails ------------------------------------------------------------------------------


def test_guardrail_imbalanced_label_alerted():
    _, results = guardrails_of(synthetic_frame(minority_share=0.1))
    balance = results["class_balancing_detection"]
    assert balance.status == "alerted"
    assert balance.details["minority_class"] == "yes"
    assert balance.details["minority_share"] < 0.2
    assert "strategy" in balance.details


def test_guardrail_balanced_label_passes():
    _, results = guardrails_of(synthetic_frame(minority_share=0.5))
    assert results["class_balancing_detection"].status == "passed"


def test_guardrail_leaking_column_flagged():
    frame = synthetic_frame()
    frame["leak"] = np.where(frame["label"] == "yes", 1.0, 0.0) + np.random.default_rng(SEED).normal(0, 0.01, len(frame))
    report, results = guardrails_of(frame)
    leakage = results["target_leakage_detection"]
    assert leakage.status == "alerted"
    assert report.leaking_columns == ("leak",)
    assert leakage.details["single_feature_auc"]["leak"] > 0.99
    assert "--drop leak" in leakage.message


def test_guardrail_no_leak_passes():
    _, results = guardrails_of(synthetic_frame())
    leakage = results["target_leakage_detection"]
    assert leakage.status == "passed"
    assert leakage.details["single_feature_auc"]["noise"] < 0.7


def test_guardrail_post_outcome_column_flagged():
    frame = synthetic_frame()
    for name in ("duration", "campaign", "pdays"):
        frame[name] = np.arange(len(frame)) % 7
    frame["poutcome"] = "nonexistent"
    report, results = guardrails_of(frame)
    assert results["target_leakage_detection"].status == "alerted"
    assert "duration" in report.leaking_columns


def test_guardrail_missing_values_imputed():
    frame = synthetic_frame()
    frame.loc[::10, "signal"] = np.nan
    frame.loc[::7, "color"] = np.nan
    _, results = guardrails_of(frame)
    missing = results["missing_feature_values_imputation"]
    assert missing.status == "done"
    assert missing.details["columns"]["signal"] == {"missing": 40, "imputed_with": "median"}
    assert missing.details["columns"]["color"]["missing"] == 58
    assert missing.details["columns"]["color"]["imputed_with"] == "a 'missing' category"


def test_guardrail_constant_and_identifier_columns_ignored():
    frame = synthetic_frame()
    frame["constant"] = 3
    frame["customer_id"] = [f"c{index}" for index in range(len(frame))]
    report, results = guardrails_of(frame)
    assert results["constant_feature_detection"].status == "done"
    assert results["high_cardinality_feature_detection"].details["not_used"] == ["customer_id"]
    assert set(report.ignored_columns) == {"constant", "customer_id"}


# -- metrics and threshold -------------------------------------------------------------------


def test_metrics_perfect_predictions():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    metrics = classification_metrics(y, proba)
    assert metrics["accuracy"] == 1.0
    assert metrics["AUC_weighted"] == 1.0
    assert metrics["norm_macro_recall"] == 1.0
    assert metrics["f1_score_binary"] == 1.0


def test_metrics_threshold_changes_labels_only():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.1, 0.9]])
    default = classification_metrics(y, proba)
    lowered = classification_metrics(y, proba, threshold=0.3)
    assert default["recall_score_binary"] == 0.5
    assert lowered["recall_score_binary"] == 1.0
    assert lowered["AUC_weighted"] == default["AUC_weighted"]


def test_tune_threshold_f1_below_half_for_rare_class():
    rng = np.random.default_rng(SEED)
    y = (rng.random(2000) < 0.1).astype(int)
    positive_proba = np.clip(0.25 * y + rng.normal(0.15, 0.1, len(y)), 0, 1)
    threshold, score = tune_threshold("f1", y, positive_proba)
    assert threshold < 0.5
    assert score > classification_metrics(y, np.column_stack([1 - positive_proba, positive_proba]))["f1_score_binary"]


def overlapping_scores(rows: int = 4000):
    """A rare class whose scores overlap the other's, so the F1-best threshold costs accuracy."""
    rng = np.random.default_rng(SEED)
    y = (rng.random(rows) < 0.12).astype(int)
    positive_proba = np.clip(rng.normal(0.25 + 0.25 * y, 0.15), 0, 1)
    return y, positive_proba


def accuracy_at(y, positive_proba, threshold):
    return float(np.mean((positive_proba >= threshold).astype(int) == y))


def test_tune_threshold_f1_unlimited_loses_accuracy():
    y, positive_proba = overlapping_scores()
    best_accuracy = accuracy_at(y, positive_proba, tune_threshold("accuracy", y, positive_proba)[0])
    threshold, _ = tune_threshold("f1", y, positive_proba)
    assert accuracy_at(y, positive_proba, threshold) < best_accuracy - 0.01


@pytest.mark.parametrize("max_loss", [0.0, 0.005, 0.02])
def test_tune_threshold_f1_within_accuracy_loss(max_loss):
    y, positive_proba = overlapping_scores()
    best_accuracy = accuracy_at(y, positive_proba, tune_threshold("accuracy", y, positive_proba)[0])
    threshold, score = tune_threshold("f1", y, positive_proba, max_accuracy_loss=max_loss)
    unlimited_threshold, unlimited_score = tune_threshold("f1", y, positive_proba)
    assert accuracy_at(y, positive_proba, threshold) >= best_accuracy - max_loss - 1e-9
    assert score <= unlimited_score
    assert threshold >= unlimited_threshold


def test_tune_threshold_wider_loss_never_lowers_f1():
    y, positive_proba = overlapping_scores()
    scores = [tune_threshold("f1", y, positive_proba, max_accuracy_loss=loss)[1] for loss in (0.0, 0.005, 0.02)]
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]


def test_tune_threshold_accuracy_ignores_loss_limit():
    y, positive_proba = overlapping_scores()
    assert tune_threshold("accuracy", y, positive_proba, 0.0) == tune_threshold("accuracy", y, positive_proba)


@pytest.mark.parametrize("loss", [-0.1, 1.0, "half", True])
def test_invalid_max_accuracy_loss_rejected(loss):
    with pytest.raises(TrainingError, match="invalid threshold_max_accuracy_loss"):
        AutoMLSettings(threshold_max_accuracy_loss=loss).validate()


def test_f1_threshold_auto_limit_is_one_standard_error():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=2, threshold_objective="f1"))
    positive_proba = result.best.oof[:, 1]
    codes = (np.asarray(y) == "yes").astype(int)
    best_accuracy = accuracy_at(codes, positive_proba, tune_threshold("accuracy", codes, positive_proba)[0])
    expected = np.sqrt(best_accuracy * (1 - best_accuracy) / len(codes))
    assert result.threshold_max_accuracy_loss == pytest.approx(expected)
    assert accuracy_at(codes, positive_proba, result.threshold) >= best_accuracy - expected - 1e-9


def test_accuracy_objective_ignores_loss_setting():
    X, y, schema = split(synthetic_frame())
    settings = AutoMLSettings(**FAST, iterations=1, threshold_objective="accuracy", threshold_max_accuracy_loss=0.01)
    result = run_automl(X, y, schema, settings)
    assert result.threshold is not None
    assert result.threshold_max_accuracy_loss is None


def test_threshold_event_reports_unlimited_choice():
    X, y, schema = split(synthetic_frame())
    events = []
    settings = AutoMLSettings(**FAST, iterations=2, threshold_objective="f1", threshold_max_accuracy_loss=0.0)
    result = run_automl(X, y, schema, settings, on_event=events.append)
    threshold_event = next(event for event in events if event.kind == "threshold")
    unlimited = threshold_event.data["unlimited"]
    codes = (np.asarray(y) == "yes").astype(int)
    free_threshold, free_score = tune_threshold("f1", codes, result.best.oof[:, 1])
    assert unlimited["threshold"] == free_threshold
    assert unlimited["score"] == pytest.approx(free_score)
    assert unlimited["accuracy"] == pytest.approx(accuracy_at(codes, result.best.oof[:, 1], free_threshold))


def test_balanced_accuracy_threshold_unlimited_by_default():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=1, threshold_objective="balanced_accuracy"))
    assert result.threshold is not None
    assert result.threshold_max_accuracy_loss is None


# -- ensembles -------------------------------------------------------------------------------


def test_greedy_selection_picks_complementary_models():
    # Alone, every model has AUC 0.75. Models 0 and 1 rank different positives first, so their
    # average separates the classes perfectly, and model 2 adds nothing.
    y = np.array([1, 1, 0, 0])
    positive = [np.array([0.9, 0.2, 0.3, 0.1]), np.array([0.2, 0.9, 0.1, 0.3]), np.array([0.6, 0.5, 0.55, 0.4])]
    probas = [np.column_stack([1 - p, p]) for p in positive]
    counts = greedy_selection(probas, y, "AUC_weighted", iterations=2)
    assert list(counts) == [1, 1, 0]


def test_greedy_selection_keeps_a_perfect_model():
    y = np.array([1, 0, 1, 0, 1])
    perfect = np.column_stack([1 - y * 0.8 - 0.1, y * 0.8 + 0.1])
    noisy = np.full((5, 2), 0.5)
    counts = greedy_selection([noisy, perfect], y, "accuracy", iterations=5)
    assert list(counts) == [0, 5]


# -- resampling stays inside folds -----------------------------------------------------------


def test_resampling_sees_only_training_fold_rows(monkeypatch):
    frame = synthetic_frame()
    frame["row_id"] = np.arange(len(frame), dtype=float)
    X, y, schema = split(frame)
    numeric = [column["name"] for column in schema["columns"] if column["type"] in ("integer", "float")]
    position = numeric.index("row_id")
    seen: list[set] = []

    def record(X_fold, y_fold):
        seen.append(set(X_fold[:, position].astype(int)))
        return X_fold, y_fold

    spec = candidates_module.CandidateSpec("LightGBM", imbalance="undersample", params=dict(n_estimators=20))
    monkeypatch.setattr(candidates_module, "_build_sampler", lambda *args: FunctionSampler(func=record, validate=False))
    monkeypatch.setattr(search_module, "portfolio", lambda allowed: [spec])
    settings = AutoMLSettings(**{**FAST, "iterations": 1, "enable_ensembles": False, "max_concurrent_iterations": 1})
    run_automl(X, y, schema, settings)

    codes = np.unique(y, return_inverse=True)[1]
    folds = list(StratifiedKFold(3, shuffle=True, random_state=SEED).split(np.zeros(len(codes)), codes))
    assert len(seen) == len(folds) + 1
    for rows, (train, test) in zip(seen, folds):
        assert rows == set(train)
        assert rows.isdisjoint(test)
    assert seen[-1] == set(range(len(frame)))


def test_smote_candidate_scores_every_row_once(monkeypatch):
    X, y, schema = split(synthetic_frame())
    spec = candidates_module.CandidateSpec("LightGBM", imbalance="smote", params=dict(n_estimators=20))
    monkeypatch.setattr(search_module, "portfolio", lambda allowed: [spec])
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=1, enable_ensembles=False))
    assert result.best.pipeline == "ordinal featurizer > SMOTENC > LightGBM"
    assert result.best.oof.shape == (ROWS, 2)
    assert np.isfinite(result.best.oof).all()


# -- exit criteria ---------------------------------------------------------------------------


def test_exit_iterations():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=2))
    assert result.stop_reason == "iterations"
    assert result.iterations_run == 2


def test_exit_score():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=10, exit_score=0.5))
    assert result.stop_reason == "exit_score"
    assert result.iterations_run == 1


def test_exit_early_stopping():
    X, y, schema = split(synthetic_frame())
    settings = AutoMLSettings(**FAST, iterations=40, early_stopping_iterations=2)
    result = run_automl(X, y, schema, settings)
    assert result.stop_reason == "early_stopping"
    assert result.iterations_run < 40


def test_exit_timeout_keeps_a_model():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**{**FAST, "timeout_minutes": 0.005}))
    assert result.stop_reason == "timeout"
    assert result.iterations_run >= 1
    assert set(result.model.predict(X.head())) <= {"yes", "no"}


def test_invalid_primary_metric_rejected():
    with pytest.raises(TrainingError, match="invalid primary metric 'AUC'"):
        AutoMLSettings(primary_metric="AUC").validate()


def test_drop_unknown_column_rejected():
    X, y, schema = split(synthetic_frame())
    with pytest.raises(TrainingError, match="cannot drop 'durration'"):
        run_automl(X, y, schema, AutoMLSettings(**FAST, drop_columns=("durration",)))


def test_drop_column_removes_it_from_model():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=1, drop_columns=("noise",)))
    assert "noise" not in result.model.roles.columns
    assert result.dropped_columns == ("noise",)


# -- reproducibility -------------------------------------------------------------------------


def test_same_seed_same_leaderboard():
    X, y, schema = split(synthetic_frame())
    settings = dict(FAST, allowed_models=("LogisticRegression",), iterations=4, refine_families=1)
    first = run_automl(X, y, schema, AutoMLSettings(**settings))
    second = run_automl(X, y, schema, AutoMLSettings(**settings))
    rows = [(row["pipeline"], row["metrics"]) for row in first.leaderboard_top(20)]
    assert rows == [(row["pipeline"], row["metrics"]) for row in second.leaderboard_top(20)]
    assert [child.spec.params for child in first.leaderboard if child.spec] == \
        [child.spec.params for child in second.leaderboard if child.spec]
    assert any(child.spec is not None and child.spec.source == "optuna" for child in first.leaderboard)


# -- threshold and ensembles in a run --------------------------------------------------------


def test_threshold_objective_applied_by_predict():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=2, threshold_objective="f1"))
    model = result.model
    proba = model.predict_proba(X)
    assert 0 < result.threshold < 1
    assert np.array_equal(model.predict(X), np.where(proba[:, 1] >= result.threshold, "yes", "no"))


def test_ensembles_on_leaderboard():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=4))
    algorithms = {child.algorithm for child in result.leaderboard}
    assert "StackEnsemble" in algorithms
    stack = next(child for child in result.leaderboard if child.algorithm == "StackEnsemble")
    assert len(stack.fold_metrics) == 3
    assert set(stack.metrics) == set(result.leaderboard[-1].metrics)


# -- interruption ----------------------------------------------------------------------------


def _interrupt_on(kind: str, after: int = 1):
    calls = []

    def on_event(event):
        if event.kind == kind:
            calls.append(event)
            if len(calls) >= after:
                raise KeyboardInterrupt

    return on_event


def _dataset_workspace(tmp_path) -> Workspace:
    frame = synthetic_frame()
    frame.to_csv(tmp_path / "synthetic.csv", index=False)
    workspace = Workspace(tmp_path / "workspace")
    lab_data.register_dataset(workspace, tmp_path / "synthetic.csv", name="synthetic", label="label")
    return workspace


def test_interrupt_during_search_registers_best_so_far(tmp_path):
    workspace = _dataset_workspace(tmp_path)
    asset, result = train_model(workspace, "synthetic", AutoMLSettings(**FAST, iterations=10),
                                model_name="synthetic-model", on_event=_interrupt_on("candidate", after=2))
    assert result.stop_reason == "interrupted"
    assert result.iterations_run == 2
    assert asset.manifest["stop_reason"] == "interrupted"
    assert (asset.path / "model.pkl").is_file()


def test_interrupt_during_refit_registers_nothing(tmp_path):
    workspace = _dataset_workspace(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train_model(workspace, "synthetic", AutoMLSettings(**FAST, iterations=2),
                    model_name="synthetic-model", on_event=_interrupt_on("refit"))
    runs = list(workspace.runs_dir.iterdir())
    from lab.automl.runrecord import load_run

    assert workspace.list("models") == []
    assert not any((workspace.root / ".staging").glob("*"))
    assert len(runs) == 1
    assert load_run(runs[0])["status"] == "Canceled"


# -- holdout validation ----------------------------------------------------------------------


def test_holdout_validation_for_large_data():
    X, y, schema = split(synthetic_frame())
    settings = AutoMLSettings(**FAST, iterations=3, holdout_min_rows=100, validation_size=0.25)
    result = run_automl(X, y, schema, settings)
    scored_rows = np.isfinite(result.best.oof[:, 0]).sum()
    assert result.validation == "stratified holdout, 25% of rows"
    assert scored_rows == ROWS // 4
    assert all(len(child.fold_metrics) == 1 for child in result.leaderboard)


def test_leakage_comparison_scores_without_leak():
    frame = synthetic_frame()
    frame["leak"] = np.where(frame["label"] == "yes", 1.0, 0.0) + np.random.default_rng(SEED).normal(0, 0.01, len(frame))
    X, y, schema = split(frame)
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=2))
    comparison = result.guardrails.leakage_comparison
    assert comparison["columns"] == ["leak"]
    assert comparison["with"]["AUC_weighted"] > 0.99
    assert comparison["without"]["AUC_weighted"] < comparison["with"]["AUC_weighted"]


def test_multiclass_label_end_to_end():
    rng = np.random.default_rng(SEED)
    label = rng.choice(["low", "mid", "high"], size=ROWS, p=[0.5, 0.3, 0.2])
    shift = pd.Series(label).map({"low": 0.0, "mid": 1.5, "high": 3.0}).to_numpy()
    frame = pd.DataFrame({"value": rng.normal(size=ROWS) + shift, "group": rng.choice(["a", "b"], size=ROWS),
                          "label": label})
    X, y, schema = split(frame)
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=3, threshold_objective="f1"))
    assert list(result.model.classes_) == ["high", "low", "mid"]
    assert result.threshold is None
    assert result.best.metrics["AUC_weighted"] > 0.8
    assert "f1_score_binary" not in result.best.metrics
    assert set(result.model.predict(X)) <= {"low", "mid", "high"}


def test_failed_candidate_does_not_stop_run(monkeypatch, tmp_path):
    X, y, schema = split(synthetic_frame())
    broken = candidates_module.CandidateSpec("LogisticRegression", params=dict(C=-1.0))
    working = candidates_module.CandidateSpec("LogisticRegression", params=dict(C=1.0))
    monkeypatch.setattr(search_module, "portfolio", lambda allowed: [broken, working])
    settings = AutoMLSettings(**FAST, iterations=2, enable_ensembles=False)
    result = run_automl(X, y, schema, settings, run_dir=tmp_path)
    child_files = sorted((tmp_path / "children").glob("*.json"))
    first = json.loads(child_files[0].read_text())
    assert first["status"] == "Failed"
    assert "C" in first["error"]
    assert [child.iteration for child in result.leaderboard] == [1]


@pytest.mark.parametrize(("primary_metric", "objective"), [
    ("accuracy", "accuracy"),
    ("AUC_weighted", "accuracy"),
    ("average_precision_score_weighted", "accuracy"),
    ("norm_macro_recall", "balanced_accuracy"),
    ("precision_score_weighted", None),
])
def test_auto_threshold_objective_by_metric(primary_metric, objective):
    assert AutoMLSettings(primary_metric=primary_metric).resolved_threshold_objective() == objective


def test_threshold_objective_none_keeps_argmax():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=1, threshold_objective=None))
    assert result.threshold is None
    assert result.model.threshold is None


def test_stack_model_fit_keeps_contract():
    X, y, schema = split(synthetic_frame())
    result = run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=3))
    stack = next(child for child in result.leaderboard if child.algorithm == "StackEnsemble")
    members = [child.spec for child in result.leaderboard if child.spec is not None][:2]
    pipelines = [build_pipeline(spec, result.model.roles, 2, SEED, 1) for spec in members]
    model = AutoMLModel(StackEnsemble(pipelines, LogisticRegression()), result.model.roles).fit(X, y)
    assert stack.members
    assert list(model.classes_) == ["no", "yes"]
    assert model.predict_proba(X).shape == (ROWS, 2)


# -- input coercion --------------------------------------------------------------------------


def test_prepare_frame_missing_column_named():
    _, _, schema = split(synthetic_frame())
    roles = roles_from_schema(schema)
    with pytest.raises(ValueError, match="missing input columns: color"):
        prepare_frame([{"signal": 1.0, "noise": 0.0, "count": 3}], roles)


def test_prepare_frame_non_numeric_value_named():
    _, _, schema = split(synthetic_frame())
    roles = roles_from_schema(schema)
    with pytest.raises(ValueError, match="column 'count' expects numbers"):
        prepare_frame([{"signal": 1.0, "noise": 0.0, "count": "three", "color": "red"}], roles)


def test_prepare_frame_orders_and_types_columns():
    _, _, schema = split(synthetic_frame())
    roles = roles_from_schema(schema)
    prepared = prepare_frame([{"color": 7, "count": "3", "noise": None, "signal": 1, "extra": "x"}], roles)
    assert list(prepared.columns) == ["signal", "noise", "count", "color"]
    assert prepared.loc[0, "count"] == 3.0
    assert np.isnan(prepared.loc[0, "noise"])
    assert prepared.loc[0, "color"] == "7"


class _FailingPipeline:
    def fit(self, X, y):
        raise RuntimeError()


def test_every_candidate_failing_raises_training_error(monkeypatch):
    X, y, schema = split(synthetic_frame())
    monkeypatch.setattr(search_module, "build_pipeline", lambda *args: _FailingPipeline())
    with pytest.raises(TrainingError, match="every candidate failed; the first error was: RuntimeError"):
        run_automl(X, y, schema, AutoMLSettings(**FAST, iterations=2))
