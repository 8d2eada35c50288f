"""Data guardrails, checked before the search and reported as Azure AutoML reports them.

Each check returns a ``GuardrailResult`` with Azure's three states: ``passed`` (nothing found),
``done`` (something was found and featurization handled it) and ``alerted`` (something was found
that the user should look at). The results go into the run record, so a report can show them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from lab.automl.metrics import classification_metrics

# Azure alerts when the minority class has at most this share of the majority class's rows.
IMBALANCE_RATIO = 0.2
HIGH_CARDINALITY_VALUES = 100
HIGH_CARDINALITY_SHARE = 0.5
LEAKAGE_FOLDS = 3
LEAKAGE_MAX_ROWS = 20_000
LEAKAGE_BINS = 20
# Pseudo-count of the prior class rates when a category's class rates are estimated.
SMOOTHING = 10.0

# Columns known to be recorded only after the outcome. A rule applies when the column and all
# of its companion columns are present, so an unrelated dataset's "duration" is not flagged.
POST_OUTCOME_COLUMNS = (
    (
        "duration",
        ("campaign", "pdays", "poutcome"),
        "the last call's duration is known only after the call, when the outcome is already known "
        "(UCI Bank Marketing description)",
    ),
)


@dataclass
class GuardrailResult:
    """One check: its Azure-style name, state, what it found, and a one-line message."""

    name: str
    status: str  # "passed", "done" or "alerted"
    message: str
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class GuardrailReport:
    results: list[GuardrailResult]
    ignored_columns: tuple[str, ...]  # constant or identifier-like: accepted as input, not used
    leaking_columns: tuple[str, ...]
    # Cross-validated metrics of the best single candidate with and without the leaking columns,
    # filled in after the search when time allows.
    leakage_comparison: dict | None = None

    def to_json(self) -> dict:
        return {
            "results": [result.to_json() for result in self.results],
            "ignored_columns": list(self.ignored_columns),
            "leaking_columns": list(self.leaking_columns),
            "leakage_comparison": self.leakage_comparison,
        }


def run_guardrails(X: pd.DataFrame, y: np.ndarray, classes: list, schema_types: dict[str, str],
                   leakage_auc: float, seed: int, dropped: tuple[str, ...] = ()) -> GuardrailReport:
    """Run every check on features ``X`` and encoded labels ``y``.

    ``schema_types`` maps each column to its dataset schema type ("integer", "float", "string"
    or "boolean"); ``dropped`` lists columns the user removed, which are reported, not checked.
    """
    constant = check_constant_columns(X)
    cardinality, identifiers = check_high_cardinality(X, schema_types)
    ignored = tuple(constant.details.get("columns", [])) + tuple(identifiers)
    leakage = check_target_leakage(X.drop(columns=list(ignored)), y, leakage_auc, seed, dropped,
                                   all_columns=tuple(X.columns))
    results = [
        check_class_balance(y, classes),
        check_missing_values(X, schema_types),
        cardinality,
        constant,
        leakage,
    ]
    return GuardrailReport(results, ignored, tuple(leakage.details.get("flagged", {})))


def check_class_balance(y: np.ndarray, classes: list) -> GuardrailResult:
    counts = np.bincount(y, minlength=len(classes))
    minority, majority = int(counts.argmin()), int(counts.argmax())
    share = counts[minority] / counts.sum()
    ratio = counts[minority] / counts[majority]
    details = {
        "class_counts": {str(label): int(count) for label, count in zip(classes, counts)},
        "minority_class": str(classes[minority]),
        "minority_share": round(float(share), 5),
        "minority_to_majority": round(float(ratio), 5),
    }
    if ratio > IMBALANCE_RATIO:
        return GuardrailResult("class_balancing_detection", "passed",
                               f"classes are balanced enough (minority {classes[minority]!r} is {share:.1%} of rows)",
                               details)
    details["strategy"] = ("search class weights, random under- and over-sampling and SMOTE/SMOTENC as pipeline "
                           "steps inside each fold; cross-validation picks the one that scores best")
    return GuardrailResult(
        "class_balancing_detection", "alerted",
        f"imbalanced classes: {classes[minority]!r} is {share:.1%} of rows; the search tries class weights "
        "and resampling, and the primary metric should not be accuracy alone",
        details,
    )


def check_missing_values(X: pd.DataFrame, schema_types: dict[str, str]) -> GuardrailResult:
    missing = X.isna().sum()
    missing = missing[missing > 0]
    if missing.empty:
        return GuardrailResult("missing_feature_values_imputation", "passed", "no missing feature values")
    imputed = {}
    for name, count in missing.items():
        imputation = "median" if schema_types.get(name) in ("integer", "float") else "a 'missing' category"
        imputed[name] = {"missing": int(count), "imputed_with": imputation}
    listed = ", ".join(f"{name} ({info['missing']})" for name, info in imputed.items())
    return GuardrailResult(
        "missing_feature_values_imputation", "done",
        f"missing values imputed (numeric: median, categorical: own category) in {listed}",
        {"columns": imputed},
    )


def check_high_cardinality(X: pd.DataFrame, schema_types: dict[str, str]) -> tuple[GuardrailResult, list[str]]:
    """Flag categorical columns with many distinct values; identifier-like ones are not used."""
    flagged, identifiers = {}, []
    rows = len(X)
    for name in X.columns:
        if schema_types.get(name) in ("integer", "float"):
            continue
        distinct = int(X[name].nunique(dropna=True))
        if distinct > HIGH_CARDINALITY_VALUES or (rows >= 20 and distinct > HIGH_CARDINALITY_SHARE * rows):
            flagged[name] = distinct
            if distinct >= 0.95 * X[name].notna().sum():
                identifiers.append(name)
    if not flagged:
        return GuardrailResult("high_cardinality_feature_detection", "passed",
                               "no high-cardinality categorical columns"), []
    listed = ", ".join(f"{name} ({count} values)" for name, count in flagged.items())
    message = f"high-cardinality categorical columns: {listed}; rare values are merged"
    if identifiers:
        message += f", identifier-like columns not used: {', '.join(identifiers)}"
    return GuardrailResult("high_cardinality_feature_detection", "done", message,
                           {"columns": flagged, "not_used": identifiers}), identifiers


def check_constant_columns(X: pd.DataFrame) -> GuardrailResult:
    constant = [name for name in X.columns if X[name].nunique(dropna=False) <= 1]
    if not constant:
        return GuardrailResult("constant_feature_detection", "passed", "no constant columns")
    return GuardrailResult("constant_feature_detection", "done",
                           f"constant columns not used: {', '.join(constant)}", {"columns": constant})


def check_target_leakage(X: pd.DataFrame, y: np.ndarray, leakage_auc: float, seed: int,
                         dropped: tuple[str, ...] = (), all_columns: tuple[str, ...] | None = None) -> GuardrailResult:
    """Flag columns that predict the label implausibly well alone, or that are known post-outcome.

    Each column's single-feature AUC_weighted comes from a cross-validated class-rate encoding
    of its values (numeric columns in quantile bins), on at most 20,000 rows. ``all_columns``
    (default: those of ``X``) decides which post-outcome rules apply, so a companion column that
    is not used as a feature still identifies the dataset.
    """
    scores = single_feature_auc(X, y, seed)
    flagged = {name: f"single-feature cross-validated AUC {auc:.3f} >= {leakage_auc}"
               for name, auc in scores.items() if auc >= leakage_auc}
    columns = set(all_columns if all_columns is not None else X.columns)
    for name, companions, reason in POST_OUTCOME_COLUMNS:
        if name in columns and set(companions) <= columns:
            flagged.setdefault(name, reason)
    details = {"single_feature_auc": scores, "threshold_auc": leakage_auc, "flagged": flagged,
               "dropped_by_user": list(dropped)}
    if not flagged:
        message = "no suspected target leakage"
        if dropped:
            message += f" (dropped by the user: {', '.join(dropped)})"
        return GuardrailResult("target_leakage_detection", "passed", message, details)
    listed = "; ".join(f"{name}: {reason}" for name, reason in flagged.items())
    drop_hint = " ".join(f"--drop {name}" for name in flagged)
    return GuardrailResult(
        "target_leakage_detection", "alerted",
        f"suspected target leakage ({listed}); scores may be higher than in production, train with {drop_hint} "
        "to compare",
        details,
    )


def single_feature_auc(X: pd.DataFrame, y: np.ndarray, seed: int) -> dict[str, float]:
    """Return each column's cross-validated AUC_weighted when it is the only feature, best first."""
    if len(X) > LEAKAGE_MAX_ROWS:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(X), LEAKAGE_MAX_ROWS, replace=False))
        X, y = X.iloc[keep], y[keep]
    n_classes = int(y.max()) + 1
    counts = np.bincount(y, minlength=n_classes)
    if counts.min() < LEAKAGE_FOLDS:
        return {}
    folds = list(StratifiedKFold(LEAKAGE_FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    onehot = np.eye(n_classes)[y]
    scores = {}
    for name in X.columns:
        codes = _value_codes(X[name])
        proba = np.zeros((len(y), n_classes))
        for train, test in folds:
            prior = onehot[train].mean(axis=0)
            sums = pd.DataFrame(onehot[train]).groupby(codes[train]).sum()
            sizes = sums.sum(axis=1).to_numpy()[:, None]
            rates = (sums.to_numpy() + SMOOTHING * prior) / (sizes + SMOOTHING)
            table = pd.DataFrame(rates, index=sums.index)
            looked_up = table.reindex(codes[test]).to_numpy()
            looked_up[np.isnan(looked_up).any(axis=1)] = prior
            proba[test] = looked_up
        scores[name] = round(classification_metrics(y, proba)["AUC_weighted"], 5)
    return dict(sorted(scores.items(), key=lambda item: -item[1] if np.isfinite(item[1]) else 0.0))


def _value_codes(series: pd.Series) -> np.ndarray:
    """Return an integer code per row: quantile bin for numeric columns, value for the rest."""
    if pd.api.types.is_numeric_dtype(series) and series.nunique() > LEAKAGE_BINS:
        binned = pd.qcut(series, LEAKAGE_BINS, labels=False, duplicates="drop")
        return binned.fillna(-1).to_numpy(dtype=int)
    codes, _ = pd.factorize(series, use_na_sentinel=True)
    return codes
