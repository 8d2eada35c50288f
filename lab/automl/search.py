"""The AutoML search: portfolio, Optuna refinement, ensembles and the final refit.

``run_automl`` is the entry point. Candidates are scored by stratified k-fold cross-validation,
or by one stratified holdout split for large data. Every candidate keeps its out-of-fold
probabilities, and the ensembles and the decision threshold are chosen on them. The search
stops at the first exit criterion: ``iterations``, ``timeout_minutes``, ``exit_score``, early
stopping, or Ctrl-C, which keeps the best candidate so far.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit
from threadpoolctl import threadpool_limits

from lab.automl import ensemble as ens
from lab.automl.candidates import CandidateSpec, build_pipeline, portfolio, search_space, spec_from_params
from lab.automl.featurization import ColumnRoles, prepare_frame, roles_from_schema
from lab.automl.guardrails import GuardrailReport, run_guardrails
from lab.automl.metrics import classification_metrics, is_better, mean_metrics, sort_key
from lab.automl.model import AutoMLModel, StackEnsemble, VotingEnsemble
from lab.automl.runrecord import RunRecord, new_run_id
from lab.automl.settings import AUTO, AutoMLSettings
from lab.automl.threshold import LIMITED_OBJECTIVES, accuracy_standard_error, threshold_score, tune_threshold
from lab.errors import TrainingError

logger = logging.getLogger(__name__)

# Refitting on all rows takes about n / n_train_fold times one fold's fit; 1.5 adds a margin.
REFIT_MARGIN = 1.5
# The time reserved for the final refit counts the fit times of this many top candidates.
RESERVE_TOP = 4
MIN_IMPROVEMENT = 1e-5

EventHandler = Callable[["Event"], None]


@dataclass
class Event:
    """Progress of a run, for a live display: ``kind`` and what goes with it."""

    # "start", "guardrails", "candidate", "stopped", "ensemble", "leakage_comparison", "threshold" or "refit"
    kind: str
    data: dict


@dataclass
class ChildRun:
    """One leaderboard entry: a cross-validated candidate or an ensemble of candidates."""

    iteration: int
    child_run_id: str
    algorithm: str
    pipeline: str
    status: str  # "Completed", "Failed" or "Canceled"
    spec: CandidateSpec | None = None
    metrics: dict = field(default_factory=dict)
    fold_metrics: list = field(default_factory=list)
    fit_seconds: list = field(default_factory=list)
    duration_seconds: float = 0.0
    error: str | None = None
    members: list | None = None  # ensembles: [{"iteration": i, "weight": w}, ...]
    oof: np.ndarray | None = field(default=None, repr=False)

    def score(self, metric: str) -> float:
        return self.metrics.get(metric, float("nan"))

    def to_json(self) -> dict:
        return {
            "child_run_id": self.child_run_id,
            "iteration": self.iteration,
            "algorithm": self.algorithm,
            "pipeline": self.pipeline,
            "status": self.status,
            "source": self.spec.source if self.spec else "ensemble",
            "imbalance": self.spec.imbalance if self.spec else None,
            "parameters": self.spec.params if self.spec else {},
            "members": self.members,
            "metrics": self.metrics,
            "fold_metrics": self.fold_metrics,
            "fit_seconds": [round(value, 3) for value in self.fit_seconds],
            "duration_seconds": round(self.duration_seconds, 3),
            "error": self.error,
        }

    def leaderboard_row(self, primary_metric: str) -> dict:
        return {
            "iteration": self.iteration,
            "child_run_id": self.child_run_id,
            "algorithm": self.algorithm,
            "pipeline": self.pipeline,
            primary_metric: self.score(primary_metric),
            "metrics": self.metrics,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass
class AutoMLResult:
    """The outcome of a finished run: the refitted best model and the record of the search."""

    run_id: str
    run_dir: Path | None
    primary_metric: str
    classes: list
    best: ChildRun
    leaderboard: list[ChildRun]  # completed child runs, best first
    model: AutoMLModel
    threshold: float | None
    guardrails: GuardrailReport
    stop_reason: str
    validation: str
    elapsed_seconds: float
    iterations_run: int
    dropped_columns: tuple[str, ...] = ()
    threshold_metrics: dict | None = None  # out-of-fold metrics of the best at the tuned threshold
    threshold_max_accuracy_loss: float | None = None  # the accuracy limit the threshold was tuned under
    # Candidates by status ("Completed", "Failed", "Canceled" when the budget cut one off); they add
    # up to iterations_run, while the leaderboard lists only completed child runs.
    iterations_by_status: dict[str, int] = field(default_factory=dict)

    def leaderboard_top(self, n: int = 10) -> list[dict]:
        return [child.leaderboard_row(self.primary_metric) for child in self.leaderboard[:n]]


def run_automl(X: pd.DataFrame, y: pd.Series, schema: dict, settings: AutoMLSettings,
               run_dir: Path | None = None, run_id: str | None = None,
               on_event: EventHandler | None = None, run_info: dict | None = None) -> AutoMLResult:
    """Search for the best classifier of ``y`` given ``X`` and return it refitted on all rows.

    ``schema`` is the dataset schema (``{"label", "columns": [{"name", "type"}, ...]}``), which
    fixes the input columns and their types. The run record goes to ``run_dir`` when given, with
    ``run_info`` (for example the dataset reference) added to its run.json.
    Raises ``TrainingError`` for unusable data or settings, and ``KeyboardInterrupt`` when the
    user interrupts after the search (during ensembles or the final refit).
    """
    settings.validate()
    search = _Search(X, y, schema, settings, run_dir, run_id or new_run_id(), on_event)
    search.record.fields.update(run_info or {})
    return search.run()


class _Search:
    def __init__(self, X, y, schema, settings: AutoMLSettings, run_dir, run_id, on_event):
        self.settings = settings
        self.metric = settings.primary_metric
        self.started = time.monotonic()
        self.budget_seconds = settings.timeout_minutes * 60
        self.on_event = on_event or (lambda event: None)
        self.run_id = run_id
        self.record = RunRecord(run_dir, run_id)
        self.run_dir = run_dir
        self.children: list[ChildRun] = []
        self.schema = schema
        self.X_raw = X
        self.y_raw = y
        self.workers = settings.max_concurrent_iterations or os.cpu_count() or 1
        self.n_jobs = settings.n_jobs or 1
        self.threshold_max_accuracy_loss: float | None = None

    # -- the run, step by step ----------------------------------------------------------------

    def run(self) -> AutoMLResult:
        # BLAS thread counts are process-wide; OpenMP ones are capped per fitting thread in _fit.
        with threadpool_limits(limits=self.n_jobs, user_api="blas"):
            return self._run()

    def _run(self) -> AutoMLResult:
        self._prepare_data()
        self.record.update(primary_metric=self.metric, settings=self.settings.to_json(), validation=self.validation,
                           rows=len(self.y), classes=[str(label) for label in self.classes])
        self._emit("start", run_id=self.run_id, rows=len(self.y), validation=self.validation,
                   budget_seconds=self.budget_seconds, iterations=self.settings.iterations)
        try:
            self._check_guardrails()
            stop_reason = self._search()
            self._emit("stopped", reason=stop_reason, iterations=self._iterations_run())
            if not self._completed():
                raise TrainingError(self._no_model_message())
            if self.settings.enable_ensembles:
                self._build_ensembles()
            if self.guardrails.leaking_columns and self.settings.compare_without_leakage:
                self._compare_without_leakage()
            best = self._leaderboard()[0]
            threshold, threshold_metrics = self._tune_threshold(best)
            model = self._refit(best, threshold)
        except KeyboardInterrupt:
            self.record.finish("Canceled", stop_reason="interrupted")
            raise
        except BaseException as exc:
            self.record.finish("Failed", error=f"{exc.__class__.__name__}: {exc}")
            raise
        result = AutoMLResult(
            run_id=self.run_id, run_dir=self.run_dir, primary_metric=self.metric,
            classes=list(self.classes), best=best, leaderboard=self._leaderboard(), model=model,
            threshold=threshold, guardrails=self.guardrails, stop_reason=stop_reason, validation=self.validation,
            elapsed_seconds=self._elapsed(), iterations_run=self._iterations_run(),
            dropped_columns=tuple(self.settings.drop_columns), threshold_metrics=threshold_metrics,
            threshold_max_accuracy_loss=self.threshold_max_accuracy_loss,
            iterations_by_status=self._iterations_by_status(),
        )
        self.record.write_leaderboard([child.leaderboard_row(self.metric) for child in result.leaderboard])
        self.record.finish("Completed", stop_reason=stop_reason, best_child_run_id=best.child_run_id,
                           best_algorithm=best.algorithm, best_metrics=best.metrics, threshold=threshold,
                           threshold_metrics=threshold_metrics,
                           threshold_max_accuracy_loss=self.threshold_max_accuracy_loss, elapsed_seconds=round(result.elapsed_seconds, 2),
                           iterations_run=result.iterations_run, leaderboard_top=result.leaderboard_top())
        return result

    def _prepare_data(self) -> None:
        columns = [column["name"] for column in self.schema["columns"]]
        unknown = [name for name in self.settings.drop_columns if name not in columns]
        if unknown:
            raise TrainingError(
                f"cannot drop {', '.join(map(repr, unknown))}: not a feature column (columns: {', '.join(columns)})"
            )
        classes, y = np.unique(np.asarray(self.y_raw), return_inverse=True)
        self.classes = list(classes)
        self.y = y.astype(int)
        counts = np.bincount(self.y)
        if len(classes) < 2:
            raise TrainingError("the label has a single class; a classifier needs at least two")
        if len(self.y) >= self.settings.holdout_min_rows:
            splitter = StratifiedShuffleSplit(1, test_size=self.settings.validation_size,
                                              random_state=self.settings.seed)
            self.validation = f"stratified holdout, {self.settings.validation_size:.0%} of rows"
        else:
            folds = self.settings.n_cross_validations
            if counts.min() < folds:
                rare = classes[counts.argmin()]
                raise TrainingError(
                    f"class {rare!r} has {counts.min()} rows, fewer than the {folds} cross-validation folds; "
                    f"add rows of that class or lower n_cross_validations"
                )
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.settings.seed)
            self.validation = f"{folds}-fold stratified cross-validation"
        self.folds = list(splitter.split(np.zeros(len(self.y)), self.y))
        self.eval_index = np.concatenate([test for _, test in self.folds])
        self.schema_types = {column["name"]: column["type"] for column in self.schema["columns"]}

    def _check_guardrails(self) -> None:
        drop = tuple(self.settings.drop_columns)
        raw_roles = roles_from_schema(self.schema, drop=drop)
        X = prepare_frame(self.X_raw, raw_roles)
        self.guardrails = run_guardrails(X, self.y, self.classes, self.schema_types, self.settings.leakage_auc,
                                         self.settings.seed, dropped=drop)
        for result in self.guardrails.results:
            # INFO, because the CLI's display already shows every alert; logged as a warning it was
            # printed twice at the default verbosity.
            log = logger.info
            log("guardrail %s: %s: %s", result.name, result.status, result.message)
        self.record.write_guardrails(self.guardrails.to_json())
        self._emit("guardrails", report=self.guardrails)
        self.roles: ColumnRoles = roles_from_schema(self.schema, drop=drop, ignore=self.guardrails.ignored_columns)
        if not self.roles.used:
            raise TrainingError("no usable feature columns remain after dropping constant and identifier-like ones")
        self.X = prepare_frame(self.X_raw, self.roles)

    # -- the search ---------------------------------------------------------------------------

    def _search(self) -> str:
        best_score, since_improvement = None, 0
        candidates = self._candidates()
        try:
            while True:
                reason = self._exit_reason(best_score, since_improvement)
                if reason:
                    return reason
                try:
                    spec, tell = next(candidates)
                except StopIteration:
                    return "search_space_exhausted"
                if self._completed() and self._over_budget(self._estimate_seconds(spec)):
                    return "timeout"
                child = self._evaluate(spec, len(self.children))
                self.children.append(child)
                tell(child)
                self.record.write_child(child.to_json())
                improved = is_better(self.metric, child.score(self.metric) - MIN_IMPROVEMENT, best_score)
                if child.status == "Completed" and improved:
                    best_score, since_improvement = child.score(self.metric), 0
                else:
                    since_improvement += 1
                self._emit("candidate", child=child, best=self._best_or_none(), elapsed=self._elapsed(),
                           budget_seconds=self.budget_seconds, iterations=self.settings.iterations)
        except KeyboardInterrupt:
            logger.warning("search interrupted after %d candidates; keeping the best so far", self._iterations_run())
            return "interrupted"

    def _exit_reason(self, best_score, since_improvement) -> str | None:
        settings = self.settings
        if settings.iterations is not None and self._iterations_run() >= settings.iterations:
            return "iterations"
        if self._completed() and self._elapsed() >= self.budget_seconds:
            return "timeout"
        if settings.exit_score is not None and best_score is not None and best_score >= settings.exit_score:
            return "exit_score"
        if settings.enable_early_stopping and since_improvement >= settings.early_stopping_iterations:
            return "early_stopping"
        return None

    def _candidates(self) -> Iterator[tuple[CandidateSpec, Callable[[ChildRun], None]]]:
        """Yield the portfolio, then Optuna trials for the best families in turn."""
        import optuna

        for spec in portfolio(self.settings.allowed_models):
            yield spec, lambda child: None
        families = self._families_by_score()[: self.settings.refine_families]
        if not families:
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        studies = {}
        for offset, family in enumerate(families):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(seed=self.settings.seed + offset, n_startup_trials=5,
                                                     multivariate=True)
            study = optuna.create_study(direction="maximize", sampler=sampler)
            self._warm_start(study, family)
            studies[family] = study
        while True:
            for family, study in studies.items():
                trial = study.ask(search_space(family))
                spec = spec_from_params(family, trial.params)
                yield spec, self._teller(study, trial)

    def _teller(self, study, trial) -> Callable[[ChildRun], None]:
        import optuna

        def tell(child: ChildRun) -> None:
            score = child.score(self.metric)
            if child.status == "Completed" and np.isfinite(score):
                study.tell(trial, score)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)

        return tell

    def _warm_start(self, study, family: str) -> None:
        """Add the family's portfolio results to the study, where they fit its search space."""
        import optuna

        space = search_space(family)
        for child in self._completed():
            if child.spec.family != family:
                continue
            params = {**child.spec.params, "imbalance": child.spec.imbalance}
            if not set(params) <= set(space):
                continue
            try:
                trial = optuna.trial.create_trial(params=params, distributions={k: space[k] for k in params},
                                                  value=child.score(self.metric))
                study.add_trial(trial)
            except (ValueError, TypeError):
                continue

    def _families_by_score(self) -> list[str]:
        best: dict[str, float] = {}
        for child in self._completed():
            family = child.spec.family
            if family not in best or is_better(self.metric, child.score(self.metric), best[family]):
                best[family] = child.score(self.metric)
        return sorted(best, key=lambda family: sort_key(self.metric, best[family]))

    # -- one candidate ------------------------------------------------------------------------

    def _evaluate(self, spec: CandidateSpec, iteration: int) -> ChildRun:
        child = ChildRun(iteration, f"{self.run_id}_{iteration}", spec.family, spec.describe(), "Running", spec=spec)
        started = time.monotonic()
        oof = np.full((len(self.y), len(self.classes)), np.nan)
        fold_results = []
        try:
            for fold_index, proba, fit_seconds in self._run_folds(spec, must_finish=not self._completed()):
                test = self.folds[fold_index][1]
                oof[test] = proba
                fold_results.append((fold_index, classification_metrics(self.y[test], proba), fit_seconds))
        except _OutOfTime:
            child.status, child.error = "Canceled", "stopped by the time budget before its last fold"
        except Exception as exc:  # an estimator's error of any type fails this candidate, not the run
            first_line = (str(exc).splitlines() or [""])[0][:300]
            child.status, child.error = "Failed", f"{exc.__class__.__name__}: {first_line}"
            logger.warning("candidate %d (%s) failed: %s", iteration, child.pipeline, child.error)
        child.duration_seconds = time.monotonic() - started
        if child.status == "Running":
            fold_results.sort(key=lambda item: item[0])
            child.fold_metrics = [metrics for _, metrics, _ in fold_results]
            child.fit_seconds = [seconds for _, _, seconds in fold_results]
            child.metrics = mean_metrics(child.fold_metrics)
            child.oof = oof
            child.status = "Completed"
            logger.info("candidate %d %s: %s %.4f in %.1f s", iteration, child.pipeline, self.metric,
                        child.score(self.metric), child.duration_seconds)
        return child

    def _run_folds(self, spec: CandidateSpec, must_finish: bool):
        """Yield (fold index, probabilities, fit seconds) per fold, in parallel when allowed."""

        def fit_fold(fold_index: int):
            if not must_finish and self._over_budget(0.0):
                raise _OutOfTime()
            train, test = self.folds[fold_index]
            fit_started = time.monotonic()
            pipeline = self._fit(spec, self.X.iloc[train], self.y[train])
            fit_seconds = time.monotonic() - fit_started
            with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
                proba = pipeline.predict_proba(self.X.iloc[test])
            return fold_index, proba, fit_seconds

        workers = min(self.workers, len(self.folds))
        if workers == 1:
            for fold_index in range(len(self.folds)):
                yield fit_fold(fold_index)
            return
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(fit_fold, fold_index) for fold_index in range(len(self.folds))]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()

    # -- time ---------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _reserve_seconds(self, with_comparison: bool = True) -> float:
        """Estimate the time the ensembles, the leakage comparison and the final refit will need."""
        ranked = sorted(self._completed(), key=lambda child: sort_key(self.metric, child.score(self.metric)))
        top = ranked[: RESERVE_TOP if self.settings.enable_ensembles else 1]
        reserve = REFIT_MARGIN * sum(float(np.mean(child.fit_seconds)) for child in top)
        if with_comparison and ranked and self.settings.compare_without_leakage and self.guardrails.leaking_columns:
            # The comparison cross-validates the best single candidate once more.
            reserve += ranked[0].duration_seconds
        return reserve

    def _estimate_seconds(self, spec: CandidateSpec) -> float:
        """Estimate a candidate's duration from earlier ones of its family (or of any family)."""
        same = [child.duration_seconds for child in self._completed() if child.spec.family == spec.family]
        durations = same or [child.duration_seconds for child in self._completed()]
        return float(np.median(durations)) if durations else 0.0

    def _over_budget(self, upcoming_seconds: float, with_comparison: bool = True) -> bool:
        reserve = self._reserve_seconds(with_comparison)
        return self._elapsed() + upcoming_seconds + reserve > self.budget_seconds

    # -- after the search ---------------------------------------------------------------------

    def _build_ensembles(self) -> None:
        ranked = [child for child in self._leaderboard() if child.spec is not None]
        members = ranked[: self.settings.ensemble_max_members]
        if len(members) < 2:
            return
        probas = [child.oof[self.eval_index] for child in members]
        y_eval = self.y[self.eval_index]

        counts = ens.greedy_selection(probas, y_eval, self.metric, self.settings.ensemble_iterations)
        chosen = [(child, int(count)) for child, count in zip(members, counts) if count > 0]
        if len(chosen) >= 2:
            oof = self._oof_from_eval(ens.blend([child.oof[self.eval_index] for child, _ in chosen],
                                                np.array([count for _, count in chosen])))
            self._add_ensemble("VotingEnsemble", chosen, oof)

        stack_members = ranked[: min(len(ranked), 5)]
        stack_probas = [child.oof[self.eval_index] for child in stack_members]
        oof = self._oof_from_eval(ens.stack_oof(stack_probas, y_eval, self.settings.seed))
        self._add_ensemble("StackEnsemble", [(child, 1) for child in stack_members], oof)

    def _oof_from_eval(self, proba_eval: np.ndarray) -> np.ndarray:
        oof = np.full((len(self.y), len(self.classes)), np.nan)
        oof[self.eval_index] = proba_eval
        return oof

    def _add_ensemble(self, algorithm: str, chosen: list[tuple[ChildRun, int]], oof: np.ndarray) -> None:
        iteration = len(self.children)
        names = " + ".join(f"{weight}x#{child.iteration}" if weight > 1 else f"#{child.iteration}"
                           for child, weight in chosen)
        fold_metrics = [classification_metrics(self.y[test], oof[test]) for _, test in self.folds]
        child = ChildRun(
            iteration, f"{self.run_id}_{iteration}", algorithm, f"{algorithm} of {names}", "Completed",
            metrics=mean_metrics(fold_metrics), fold_metrics=fold_metrics,
            members=[{"iteration": child.iteration, "weight": weight} for child, weight in chosen], oof=oof,
        )
        self.children.append(child)
        self.record.write_child(child.to_json())
        self._emit("ensemble", child=child, best=self._best_or_none())

    def _compare_without_leakage(self) -> None:
        """Score the best single candidate again without the suspected leaking columns."""
        leaking = self.guardrails.leaking_columns
        best = next(child for child in self._leaderboard() if child.spec is not None)
        roles = roles_from_schema(self.schema, drop=tuple(self.settings.drop_columns) + leaking,
                                  ignore=self.guardrails.ignored_columns)
        comparison = {"columns": list(leaking), "child_run_id": best.child_run_id, "pipeline": best.pipeline,
                      "with": best.metrics, "without": None}
        if not roles.used:
            comparison["skipped"] = "no feature columns remain without them"
        elif self._over_budget(best.duration_seconds, with_comparison=False):
            comparison["skipped"] = "not enough time left in the budget"
        else:
            X = prepare_frame(self.X_raw, roles)

            def score_fold(fold):
                train, test = fold
                pipeline = self._fit(best.spec, X.iloc[train], self.y[train], roles)
                with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
                    return classification_metrics(self.y[test], pipeline.predict_proba(X.iloc[test]))

            with ThreadPoolExecutor(min(self.workers, len(self.folds))) as pool:
                comparison["without"] = mean_metrics(list(pool.map(score_fold, self.folds)))
            logger.info("without %s, %s is %.4f (with: %.4f)", ", ".join(leaking), self.metric,
                        comparison["without"][self.metric], best.score(self.metric))
        self.guardrails.leakage_comparison = comparison
        self.record.write_guardrails(self.guardrails.to_json())
        self._emit("leakage_comparison", comparison=comparison, metric=self.metric)

    def _tune_threshold(self, best: ChildRun) -> tuple[float | None, dict | None]:
        objective = self.settings.resolved_threshold_objective()
        if objective is None or len(self.classes) != 2:
            return None, None
        y_eval = self.y[self.eval_index]
        positive_proba = best.oof[self.eval_index, 1]
        max_accuracy_loss = self._max_accuracy_loss(objective, y_eval, positive_proba)
        self.threshold_max_accuracy_loss = max_accuracy_loss
        threshold, score = tune_threshold(objective, y_eval, positive_proba, max_accuracy_loss)
        # NOTE: these metrics are optimistic, because the threshold was chosen on the same rows.
        metrics = mean_metrics([classification_metrics(self.y[test], best.oof[test], threshold)
                                for _, test in self.folds])
        limit = "" if max_accuracy_loss is None else f" within {max_accuracy_loss:.4f} of the best accuracy"
        logger.info("decision threshold %.3f maximizes out-of-fold %s (%.4f)%s", threshold, objective, score, limit)
        unlimited = None
        if max_accuracy_loss is not None:
            # What the limit costs: the objective's best threshold without it, for the user to compare.
            free_threshold, free_score = tune_threshold(objective, y_eval, positive_proba)
            unlimited = {"threshold": free_threshold, "score": free_score,
                         "accuracy": threshold_score("accuracy", y_eval, positive_proba, free_threshold)}
        self._emit("threshold", threshold=threshold, objective=objective, metrics=metrics,
                   max_accuracy_loss=max_accuracy_loss, unlimited=unlimited)
        return threshold, metrics

    def _max_accuracy_loss(self, objective: str, y_eval: np.ndarray, positive_proba: np.ndarray) -> float | None:
        """Return the accuracy the threshold may give up for ``objective``, with "auto" resolved.

        "auto" limits f1 to one standard error of the best out-of-fold accuracy: thresholds whose
        accuracy is within it are statistically tied on accuracy, and among them the one with the
        best F1 wins. Maximizing F1 alone picks a threshold several points of accuracy lower.
        """
        loss = self.settings.threshold_max_accuracy_loss
        if objective not in LIMITED_OBJECTIVES:
            return None  # tuning for accuracy itself, so no accuracy limit applies
        if loss != AUTO:
            return loss
        if objective != "f1":
            return None
        _, best_accuracy = tune_threshold("accuracy", y_eval, positive_proba)
        return accuracy_standard_error(best_accuracy, len(y_eval))

    def _refit(self, best: ChildRun, threshold: float | None) -> AutoMLModel:
        """Fit the best pipeline (or every member of the best ensemble) on all rows."""
        self._emit("refit", child=best)
        started = time.monotonic()
        by_iteration = {child.iteration: child for child in self.children}
        if best.spec is not None:
            estimator = self._fit(best.spec, self.X, self.y)
        else:
            members = [by_iteration[member["iteration"]] for member in best.members]
            with ThreadPoolExecutor(self.workers) as pool:
                fitted = list(pool.map(lambda child: self._fit(child.spec, self.X, self.y), members))
            if best.algorithm == "VotingEnsemble":
                estimator = VotingEnsemble(fitted, [member["weight"] for member in best.members])
            else:
                probas = [child.oof[self.eval_index] for child in members]
                meta = ens.fit_stack(probas, self.y[self.eval_index], self.settings.seed)
                estimator = StackEnsemble(fitted, meta)
        logger.info("refitted %s on %d rows in %.1f s", best.algorithm, len(self.y), time.monotonic() - started)
        return AutoMLModel(estimator, self.roles, self.classes, threshold, best.algorithm)

    def _fit(self, spec: CandidateSpec, X: pd.DataFrame, y: np.ndarray, roles: ColumnRoles | None = None):
        """Fit a new pipeline for ``spec``; OpenMP threads are capped like the estimator's own.

        HistGradientBoosting has no ``n_jobs`` and would start one OpenMP thread per core in
        every worker, so the cap keeps threads from outnumbering cores when folds run in parallel.
        """
        pipeline = build_pipeline(spec, roles or self.roles, len(self.classes), self.settings.seed, self.n_jobs)
        with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
            return pipeline.fit(X, y)

    # -- helpers ------------------------------------------------------------------------------

    def _completed(self) -> list[ChildRun]:
        return [child for child in self.children if child.status == "Completed" and child.spec is not None]

    def _iterations_run(self) -> int:
        return sum(1 for child in self.children if child.spec is not None)

    def _iterations_by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for child in self.children:
            if child.spec is not None:
                counts[child.status] = counts.get(child.status, 0) + 1
        return counts

    def _leaderboard(self) -> list[ChildRun]:
        done = [child for child in self.children if child.status == "Completed"]
        return sorted(done, key=lambda child: (sort_key(self.metric, child.score(self.metric)), child.iteration))

    def _best_or_none(self) -> ChildRun | None:
        board = self._leaderboard()
        return board[0] if board else None

    def _no_model_message(self) -> str:
        failed = [child for child in self.children if child.status == "Failed"]
        if failed:
            return f"every candidate failed; the first error was: {failed[0].error}"
        return "the search ended before any candidate finished; raise --timeout or --iterations"

    def _emit(self, kind: str, **data) -> None:
        self.on_event(Event(kind, data))


class _OutOfTime(Exception):
    """A candidate was stopped between folds because the time budget ran out."""
