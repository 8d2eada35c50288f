"""Candidate pipelines: featurizer, optional resampler, estimator.

A candidate is described by a ``CandidateSpec`` (plain data, stored in the child run) and built
into an unfitted pipeline by ``build_pipeline``. Resamplers are imbalanced-learn pipeline steps,
so they run only when the pipeline is fitted, which means inside each training fold and never on
the rows a fold is scored on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import lightgbm as lgb
from imblearn.over_sampling import SMOTE, SMOTENC, RandomOverSampler
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from lab.automl.featurization import ColumnRoles, build_featurizer, categorical_mask

IMBALANCE_STRATEGIES = ("none", "class_weight", "undersample", "oversample", "smote")
# After random or SMOTE resampling of a binary task, the minority class is this share of the majority.
RESAMPLED_MINORITY_RATIO = 0.5
FEATURIZER_OF = {
    "LightGBM": "ordinal",
    "HistGradientBoosting": "ordinal",
    "RandomForest": "one_hot",
    "ExtraTrees": "one_hot",
    "LogisticRegression": "one_hot",
}


@dataclass(frozen=True)
class CandidateSpec:
    """One point of the search space: estimator family, imbalance strategy and parameters."""

    family: str
    imbalance: str = "none"
    params: dict = field(default_factory=dict)
    source: str = "portfolio"  # "portfolio" or "optuna"

    @property
    def featurizer(self) -> str:
        return FEATURIZER_OF[self.family]

    def describe(self) -> str:
        """Return the pipeline as one line, e.g. ``ordinal featurizer > SMOTENC > LightGBM``."""
        steps = [f"{self.featurizer} featurizer"]
        if self.imbalance in ("undersample", "oversample", "smote"):
            steps.append(_sampler_name(self.imbalance, self.featurizer))
        steps.append(self.family + (" (balanced class weights)" if self.imbalance == "class_weight" else ""))
        return " > ".join(steps)

    def to_json(self) -> dict:
        return asdict(self)


def _sampler_name(imbalance: str, featurizer: str) -> str:
    if imbalance == "smote":
        return "SMOTENC" if featurizer == "ordinal" else "SMOTE"
    return {"undersample": "RandomUnderSampler", "oversample": "RandomOverSampler"}[imbalance]


def build_pipeline(spec: CandidateSpec, roles: ColumnRoles, n_classes: int, seed: int, n_jobs: int):
    """Return an unfitted pipeline for ``spec`` that takes prepared frames and encoded labels."""
    featurizer = build_featurizer(spec.featurizer, roles)
    estimator = _build_estimator(spec, roles, seed, n_jobs)
    sampler = _build_sampler(spec, roles, n_classes, seed)
    if sampler is None:
        return Pipeline([("featurize", featurizer), ("estimator", estimator)])
    return ImbPipeline([("featurize", featurizer), ("resample", sampler), ("estimator", estimator)])


def _build_sampler(spec: CandidateSpec, roles: ColumnRoles, n_classes: int, seed: int):
    strategy = RESAMPLED_MINORITY_RATIO if n_classes == 2 else "auto"
    if spec.imbalance == "undersample":
        return RandomUnderSampler(sampling_strategy=strategy, random_state=seed)
    if spec.imbalance == "oversample":
        return RandomOverSampler(sampling_strategy=strategy, random_state=seed)
    if spec.imbalance == "smote":
        mask = categorical_mask(roles)
        if spec.featurizer == "ordinal" and any(mask) and not all(mask):
            return SMOTENC(categorical_features=mask, sampling_strategy=strategy, random_state=seed)
        return SMOTE(sampling_strategy=strategy, random_state=seed)
    return None


def _build_estimator(spec: CandidateSpec, roles: ColumnRoles, seed: int, n_jobs: int):
    params = dict(spec.params)
    balanced = spec.imbalance == "class_weight"
    if spec.family == "LightGBM":
        return lgb.LGBMClassifier(
            **params, subsample_freq=1 if params.get("subsample", 1.0) < 1 else 0,
            class_weight="balanced" if balanced else None, random_state=seed, n_jobs=n_jobs,
            deterministic=True, force_row_wise=True, verbose=-1,
        )
    if spec.family == "HistGradientBoosting":
        return HistGradientBoostingClassifier(
            **params, categorical_features=categorical_mask(roles) if roles.categorical else None,
            class_weight="balanced" if balanced else None, early_stopping=False, random_state=seed,
        )
    if spec.family == "RandomForest":
        return RandomForestClassifier(
            **params, class_weight="balanced_subsample" if balanced else None, random_state=seed, n_jobs=n_jobs,
        )
    if spec.family == "ExtraTrees":
        return ExtraTreesClassifier(
            **params, class_weight="balanced_subsample" if balanced else None, random_state=seed, n_jobs=n_jobs,
        )
    if spec.family == "LogisticRegression":
        return LogisticRegression(**params, class_weight="balanced" if balanced else None, max_iter=2000)
    raise ValueError(f"unknown estimator family {spec.family!r}")


def portfolio(allowed: tuple[str, ...]) -> list[CandidateSpec]:
    """Return strong known configurations, best-first, for the allowed families.

    The first entries are cheap and good on typical tabular data, so a short time budget still
    ends with a useful model and a cheap, different second model for the ensembles. Slower
    families and resampling variants come later.
    """
    lgbm_default = dict(n_estimators=250, learning_rate=0.05, num_leaves=31, min_child_samples=20, subsample=0.8,
                        colsample_bytree=0.8, reg_lambda=1.0)
    specs = [
        CandidateSpec("LightGBM", params=lgbm_default),
        CandidateSpec("LogisticRegression", params=dict(C=1.0)),
        CandidateSpec("LightGBM", params=dict(n_estimators=600, learning_rate=0.02, num_leaves=15,
                                              min_child_samples=50, subsample=0.7, colsample_bytree=0.5,
                                              reg_lambda=5.0)),
        CandidateSpec("HistGradientBoosting", params=dict(max_iter=150, learning_rate=0.1, max_leaf_nodes=31,
                                                          min_samples_leaf=20, l2_regularization=1.0)),
        CandidateSpec("LightGBM", params=dict(n_estimators=400, learning_rate=0.03, num_leaves=63,
                                              min_child_samples=40, subsample=0.7, colsample_bytree=0.6,
                                              reg_lambda=3.0, reg_alpha=0.1)),
        CandidateSpec("LightGBM", imbalance="class_weight",
                      params=dict(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=30,
                                  subsample=0.8, colsample_bytree=0.7, reg_lambda=1.0)),
        CandidateSpec("RandomForest", params=dict(n_estimators=200, max_features="sqrt", min_samples_leaf=3,
                                                  max_samples=0.5)),
        CandidateSpec("ExtraTrees", params=dict(n_estimators=100, max_features="sqrt", min_samples_leaf=5)),
        CandidateSpec("HistGradientBoosting", params=dict(max_iter=400, learning_rate=0.04, max_leaf_nodes=15,
                                                          min_samples_leaf=40, l2_regularization=3.0)),
        CandidateSpec("LightGBM", imbalance="smote", params=lgbm_default),
        CandidateSpec("LogisticRegression", imbalance="class_weight", params=dict(C=0.3)),
        CandidateSpec("RandomForest", imbalance="undersample",
                      params=dict(n_estimators=200, max_features="sqrt", min_samples_leaf=1)),
        CandidateSpec("LightGBM", imbalance="oversample",
                      params=dict(n_estimators=300, learning_rate=0.03, num_leaves=15, min_child_samples=30,
                                  subsample=0.8, colsample_bytree=0.6, reg_lambda=3.0)),
    ]
    return [spec for spec in specs if spec.family in allowed]


def search_space(family: str) -> dict:
    """Return the Optuna distributions that refinement samples for ``family``."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {"imbalance": CategoricalDistribution(list(IMBALANCE_STRATEGIES))}
    if family == "LightGBM":
        space.update(
            n_estimators=IntDistribution(100, 1000, log=True),
            learning_rate=FloatDistribution(0.01, 0.2, log=True),
            num_leaves=IntDistribution(7, 127, log=True),
            min_child_samples=IntDistribution(5, 200, log=True),
            subsample=FloatDistribution(0.5, 1.0),
            colsample_bytree=FloatDistribution(0.3, 1.0),
            reg_lambda=FloatDistribution(1e-3, 30.0, log=True),
            reg_alpha=FloatDistribution(1e-3, 10.0, log=True),
        )
    elif family == "HistGradientBoosting":
        space.update(
            max_iter=IntDistribution(100, 800, log=True),
            learning_rate=FloatDistribution(0.01, 0.2, log=True),
            max_leaf_nodes=IntDistribution(7, 127, log=True),
            min_samples_leaf=IntDistribution(5, 200, log=True),
            l2_regularization=FloatDistribution(1e-3, 30.0, log=True),
            max_features=FloatDistribution(0.3, 1.0),
        )
    elif family in ("RandomForest", "ExtraTrees"):
        space.update(
            n_estimators=IntDistribution(50, 300, log=True),
            max_features=FloatDistribution(0.05, 0.7, log=True),
            min_samples_leaf=IntDistribution(1, 30, log=True),
        )
    elif family == "LogisticRegression":
        space.update(C=FloatDistribution(1e-3, 100.0, log=True))
    else:
        raise ValueError(f"unknown estimator family {family!r}")
    return space


def spec_from_params(family: str, params: dict, source: str = "optuna") -> CandidateSpec:
    """Return the candidate for a point of ``search_space(family)``."""
    params = dict(params)
    imbalance = params.pop("imbalance", "none")
    return CandidateSpec(family, imbalance=imbalance, params=params, source=source)
