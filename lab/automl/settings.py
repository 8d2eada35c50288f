"""Settings of one AutoML run, named after Azure AutoML's ``AutoMLConfig`` where it has a name."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lab.errors import TrainingError

PRIMARY_METRICS = (
    "accuracy",
    "AUC_weighted",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)
THRESHOLD_OBJECTIVES = ("accuracy", "f1", "balanced_accuracy")
AUTO = "auto"
# The objective that threshold_objective="auto" tunes for, by primary metric. The two ranking metrics get
# accuracy, because they do not depend on the threshold and the predicted labels should be as
# accurate as possible. norm_macro_recall is a rescaled balanced accuracy, so tuning for
# balanced accuracy maximizes it. None keeps the most probable class.
AUTO_THRESHOLD_OBJECTIVE = {
    "accuracy": "accuracy",
    "AUC_weighted": "accuracy",
    "average_precision_score_weighted": "accuracy",
    "norm_macro_recall": "balanced_accuracy",
    "precision_score_weighted": None,
}
FAMILIES = ("LightGBM", "HistGradientBoosting", "RandomForest", "ExtraTrees", "LogisticRegression")


@dataclass
class AutoMLSettings:
    """Settings of a search: the primary metric, validation, exit criteria and search space.

    Times are in minutes, as Azure's ``experiment_timeout_minutes``. ``timeout_minutes`` covers
    the whole run: guardrails, search, ensembles and the final refit on all rows.

    NOTE: the first candidate always runs to the end, and the time kept back for the refit is an
    estimate from fold fit times. A budget shorter than one candidate's cross-validation, or cores
    busy with other work, can therefore make the run take longer than ``timeout_minutes``.
    """

    primary_metric: str = "AUC_weighted"
    timeout_minutes: float = 4.0
    iterations: int | None = None  # candidates evaluated by cross-validation, ensembles not counted
    exit_score: float | None = None
    n_cross_validations: int = 5
    # Above this many rows one stratified holdout split replaces k-fold cross-validation.
    # NOTE: Azure switches at 20,000 rows; 100,000 keeps k-fold on Bank Marketing (32,950 rows),
    # where it gives steadier estimates and out-of-fold predictions for every row.
    holdout_min_rows: int = 100_000
    validation_size: float = 0.1
    seed: int = 0
    # Folds (and ensemble members at refit) fitted at the same time; None: one per CPU core.
    max_concurrent_iterations: int | None = None
    enable_early_stopping: bool = True
    early_stopping_iterations: int = 20
    allowed_models: tuple[str, ...] = FAMILIES
    enable_ensembles: bool = True
    ensemble_iterations: int = 15
    ensemble_max_members: int = 12
    # "auto", one of THRESHOLD_OBJECTIVES, or None for the most probable class (binary tasks only).
    threshold_objective: str | None = AUTO
    # How far below the best out-of-fold accuracy the f1 or balanced_accuracy threshold may go, as
    # a fraction (0.005 is half a point). "auto" allows one standard error of that accuracy for f1
    # and no limit for balanced_accuracy; None never limits.
    threshold_max_accuracy_loss: float | str | None = AUTO
    drop_columns: tuple[str, ...] = ()
    # Single-feature cross-validated AUC at or above this flags a column as suspected leakage.
    leakage_auc: float = 0.95
    # After the search, score the best single candidate again without the suspected leaking
    # columns (one more cross-validation, skipped when the time budget does not allow it).
    compare_without_leakage: bool = True
    refine_families: int = 2
    # Threads per estimator. One thread each, with folds in parallel, avoids the slowdown that
    # multi-threaded LightGBM and HistGradientBoosting show when other processes share the cores.
    n_jobs: int | None = None
    extra: dict = field(default_factory=dict)

    def validate(self) -> "AutoMLSettings":
        """Check every field and return ``self``; raise ``TrainingError`` naming the bad value."""
        if self.primary_metric not in PRIMARY_METRICS:
            raise TrainingError(
                f"invalid primary metric {self.primary_metric!r}; use one of {', '.join(PRIMARY_METRICS)}"
            )
        if not self.timeout_minutes > 0:
            raise TrainingError(f"invalid timeout {self.timeout_minutes!r} minutes; use a positive number such as 0.5 or 5")

        if self.iterations is not None and self.iterations < 1:
            raise TrainingError(f"invalid iterations {self.iterations!r}; use a whole number of at least 1")
        if self.n_cross_validations < 2:
            raise TrainingError(f"invalid n_cross_validations {self.n_cross_validations!r}; use 2 or more folds")
        if not 0 < self.validation_size < 0.5:
            raise TrainingError(f"invalid validation_size {self.validation_size!r}; use a fraction between 0 and 0.5")

        if self.max_concurrent_iterations is not None and self.max_concurrent_iterations < 1:
            raise TrainingError(
                f"invalid max_concurrent_iterations {self.max_concurrent_iterations!r}; use 1 or more"
            )
        if self.early_stopping_iterations < 1:
            raise TrainingError(
                f"invalid early_stopping_iterations {self.early_stopping_iterations!r}; use 1 or more"
            )

        allowed_objectives = (None, AUTO, *THRESHOLD_OBJECTIVES)
        if self.threshold_objective not in allowed_objectives:
            raise TrainingError(
                f"invalid threshold objective {self.threshold_objective!r}; use {AUTO!r}, none or one of "
                f"{', '.join(THRESHOLD_OBJECTIVES)}"
            )
        loss = self.threshold_max_accuracy_loss
        if loss != AUTO and loss is not None and (isinstance(loss, (str, bool)) or not 0 <= loss < 1):
            raise TrainingError(
                f"invalid threshold_max_accuracy_loss {loss!r}; use {AUTO!r}, none or a fraction of at least 0 "
                f"and below 1, such as 0.005 for half a point of accuracy"
            )
        if self.ensemble_iterations < 1 or self.ensemble_max_members < 2:
            raise TrainingError(
                f"invalid ensemble settings (iterations {self.ensemble_iterations!r}, max members "
                f"{self.ensemble_max_members!r}); use at least 1 iteration and 2 members, or disable ensembles"
            )
        if not 0.5 < self.leakage_auc <= 1.0:
            raise TrainingError(f"invalid leakage_auc {self.leakage_auc!r}; use an AUC above 0.5 and at most 1.0")

        unknown = [name for name in self.allowed_models if name not in FAMILIES]
        if unknown or not self.allowed_models:
            raise TrainingError(
                f"invalid allowed models {list(self.allowed_models)!r}; choose from {', '.join(FAMILIES)}"
            )
        return self

    def resolved_threshold_objective(self) -> str | None:
        """Return the objective the decision threshold is tuned for, with "auto" resolved."""
        if self.threshold_objective == AUTO:
            return AUTO_THRESHOLD_OBJECTIVE[self.primary_metric]
        return self.threshold_objective

    def to_json(self) -> dict:
        out = asdict(self)
        out["allowed_models"] = list(self.allowed_models)
        out["drop_columns"] = list(self.drop_columns)
        return out
