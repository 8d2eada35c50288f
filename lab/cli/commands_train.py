"""`lab train`: run the local AutoML on a registered dataset and register the best model."""

from __future__ import annotations

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lab import models as lab_models
from lab.automl import FAMILIES, PRIMARY_METRICS, THRESHOLD_OBJECTIVES, AutoMLSettings
from lab.automl.search import Event

DEFAULTS = AutoMLSettings()
LIVE_ROWS = 10
STATUS_STYLE = {"passed": "green", "done": "cyan", "alerted": "bold yellow"}


class AccuracyLoss(click.ParamType):
    """A --threshold-max-accuracy-loss value: "auto", "none" or a fraction in [0, 1)."""

    name = "accuracy loss"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if text == "none":
            return None
        try:
            fraction = float(text)
        except ValueError:
            fraction = -1.0
        if not 0 <= fraction < 1:
            self.fail(f"{value!r} is not 'auto', 'none' or a fraction of at least 0 and below 1 "
                      f"(0.005 is half a point of accuracy)", param, ctx)
        return fraction


@click.command("train")
@click.option("--dataset", "dataset_ref", metavar="NAME[:VER]",
              help="Registered dataset to train on; default: the newest registered dataset.")
@click.option("--primary-metric", type=click.Choice(PRIMARY_METRICS), default=DEFAULTS.primary_metric,
              show_default=True, help="Metric that ranks the leaderboard and picks the best model.")
@click.option("--timeout", "timeout_minutes", type=float, default=DEFAULTS.timeout_minutes, show_default=True,
              metavar="MINUTES",
              help="Time budget in minutes (Azure's experiment_timeout_minutes) for the whole run: "
                   "guardrails, search, ensembles and final refit. Fractions are fine, e.g. 0.5 for 30 seconds.")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Stop after this many candidate pipelines (ensembles not counted).")
@click.option("--exit-score", type=float, default=None,
              help="Stop as soon as a candidate's cross-validated primary metric reaches this value.")
@click.option("--max-concurrent-iterations", type=click.IntRange(min=1), default=None,
              help="Folds (and ensemble members at refit) fitted in parallel, one thread each; "
                   "default: one per CPU core.")
@click.option("--n-cross-validations", type=click.IntRange(min=2), default=DEFAULTS.n_cross_validations,
              show_default=True, help="Folds of stratified cross-validation (datasets under 100,000 rows).")
@click.option("--early-stopping-iterations", type=click.IntRange(min=1), default=DEFAULTS.early_stopping_iterations,
              show_default=True, help="Stop when this many candidates in a row do not improve the best score.")
@click.option("--no-early-stopping", is_flag=True, help="Keep searching until another exit criterion is met.")
@click.option("--threshold-objective", type=click.Choice(("auto", *THRESHOLD_OBJECTIVES, "none")), default="auto",
              show_default=True,
              help="Tune the decision threshold of a binary model on out-of-fold predictions to maximize this. "
                   "'auto' tunes for accuracy when the primary metric is accuracy, AUC_weighted or "
                   "average_precision_score_weighted, for balanced_accuracy when it is norm_macro_recall, and "
                   "keeps the most probable class for precision_score_weighted; 'none' always keeps it.")
@click.option("--threshold-max-accuracy-loss", "max_accuracy_loss", type=AccuracyLoss(), default="auto",
              show_default=True, metavar="FRACTION|auto|none",
              help="For the f1 and balanced_accuracy objectives: how far below the best out-of-fold accuracy "
                   "the threshold may go, as a fraction (0.005 is half a point). 'auto' allows one standard "
                   "error of that accuracy for f1 and no limit for balanced_accuracy; 'none' never limits.")
@click.option("--drop", "drop_columns", multiple=True, metavar="COLUMN",
              help="Train without this column (repeatable), e.g. a column flagged as target leakage.")
@click.option("--allowed-models", multiple=True, type=click.Choice(FAMILIES),
              help="Estimator families to search (repeatable); default: all.")
@click.option("--no-ensembles", is_flag=True, help="Skip the VotingEnsemble and StackEnsemble.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True,
              help="Random seed; the same data, seed and --iterations give the same leaderboard.")
@click.option("--model-name", default=lab_models.DEFAULT_MODEL_NAME, show_default=True,
              help="Name to register the best model under.")
@click.pass_obj
def train_command(workspace, dataset_ref, primary_metric, timeout_minutes, iterations, exit_score,
                  max_concurrent_iterations, n_cross_validations, early_stopping_iterations, no_early_stopping,
                  threshold_objective, max_accuracy_loss, drop_columns, allowed_models, no_ensembles, seed,
                  model_name):
    """Run AutoML on a registered dataset and register the best model.

    Checks the data (class balance, missing values, cardinality, constant columns, target
    leakage), searches a portfolio of LightGBM, HistGradientBoosting, RandomForest, ExtraTrees
    and LogisticRegression pipelines, refines the best families with Optuna, builds a
    VotingEnsemble and a StackEnsemble, and registers the best model. Ctrl-C stops the search
    and keeps the best model so far; a second Ctrl-C cancels without registering anything.
    """
    from lab.training import train_model

    settings = AutoMLSettings(
        primary_metric=primary_metric, timeout_minutes=timeout_minutes, iterations=iterations,
        exit_score=exit_score, n_cross_validations=n_cross_validations, seed=seed,
        max_concurrent_iterations=max_concurrent_iterations, enable_early_stopping=not no_early_stopping,
        early_stopping_iterations=early_stopping_iterations,
        threshold_objective=None if threshold_objective == "none" else threshold_objective,
        threshold_max_accuracy_loss=max_accuracy_loss, drop_columns=tuple(drop_columns),
        allowed_models=tuple(allowed_models) or FAMILIES,
        enable_ensembles=not no_ensembles,
    ).validate()
    display = TrainDisplay(Console(), primary_metric)
    try:
        asset, result = train_model(workspace, dataset_ref, settings, model_name=model_name, on_event=display)
    finally:
        display.close()
    print_result(display.console, asset, result)
    from lab.cli.commands_serve import print_compose_env

    print_compose_env(workspace, asset.ref)


class TrainDisplay:
    """Shows guardrails, then a live leaderboard and progress bar; plain lines when not a terminal."""

    def __init__(self, console: Console, metric: str):
        self.console = console
        self.metric = metric
        self.live: Live | None = None
        self.progress: Progress | None = None
        self.task = None
        self.rows: list = []
        self.best = None

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"on_{event.kind}", None)
        if handler is not None:
            handler(**event.data)

    def on_start(self, run_id, rows, validation, budget_seconds, iterations) -> None:
        limit = f", at most {iterations} candidates" if iterations else ""
        self.console.print(f"AutoML run {run_id}: {rows} rows, {validation}, "
                           f"budget {budget_seconds / 60:g} min{limit}, primary metric {self.metric}")
        self.budget_seconds = budget_seconds
        self.iterations = iterations

    def on_guardrails(self, report) -> None:
        if self.console.is_terminal:
            table = Table(title="Data guardrails", title_justify="left")
            table.add_column("guardrail")
            table.add_column("status")
            table.add_column("details", overflow="fold")
            for result in report.results:
                style = STATUS_STYLE.get(result.status, "")
                table.add_row(result.name, f"[{style}]{result.status}[/]", result.message)
            self.console.print(table)
        else:
            for result in report.results:
                self._plain(f"guardrail {result.name}: {result.status}: {result.message}")
        for result in report.results:
            if result.status == "alerted":
                self.console.print(f"[bold yellow]warning:[/] {result.message}", highlight=False, soft_wrap=True)
        if self.console.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                     TextColumn("{task.fields[status]}"), console=self.console)
            total = self.iterations if self.iterations else self.budget_seconds
            self.task = self.progress.add_task("search", total=total, status="")
            self.live = Live(self._render(), console=self.console, refresh_per_second=4)
            self.live.start()
        else:
            self._plain(f"{'iter':>4}  {'pipeline':<58} {self.metric:>14} {'best':>8} {'seconds':>8}")

    def on_candidate(self, child, best, elapsed, budget_seconds, iterations) -> None:
        self._add(child, best)
        if self.live is not None:
            completed = child.iteration + 1 if iterations else min(elapsed, budget_seconds)
            status = f"best {best.score(self.metric):.4f}" if best is not None else ""
            self.progress.update(self.task, completed=completed, status=status)
            self.live.update(self._render())

    def on_ensemble(self, child, best) -> None:
        self._add(child, best)
        if self.live is not None:
            self.live.update(self._render())

    def on_stopped(self, reason, iterations) -> None:
        if self.live is not None:
            self.progress.update(self.task, completed=self.progress.tasks[0].total, status=f"stopped: {reason}")
            self.live.update(self._render())
        else:
            self._plain(f"search stopped ({reason}) after {_candidates(iterations)}")

    def on_leakage_comparison(self, comparison, metric) -> None:
        columns = ", ".join(comparison["columns"])
        if comparison["without"] is None:
            self._print(f"no comparison without {columns}: {comparison['skipped']}")
            return
        self._print(f"without {columns}: cross-validated {metric} {comparison['without'][metric]:.4f} "
                    f"(with: {comparison['with'][metric]:.4f}, {comparison['pipeline']})")

    def on_threshold(self, threshold, objective, metrics, max_accuracy_loss=None, unlimited=None) -> None:
        limit = ""
        if max_accuracy_loss is not None:
            limit = f" among thresholds within {max_accuracy_loss:.4f} of the best accuracy"
        self._print(f"decision threshold {threshold:.3f} maximizes out-of-fold {objective}{limit}")
        if unlimited is not None and unlimited["threshold"] != threshold:
            self._print(f"  without that limit: threshold {unlimited['threshold']:.3f}, {objective} "
                        f"{unlimited['score']:.4f}, accuracy {unlimited['accuracy']:.4f} "
                        f"(--threshold-max-accuracy-loss none)")

    def on_refit(self, child) -> None:
        self._print(f"refitting {child.algorithm} (iteration {child.iteration}) on all rows")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _add(self, child, best) -> None:
        self.rows.append(child)
        self.best = best
        if self.live is None:
            score = child.score(self.metric)
            score_text = f"{score:.4f}" if child.status == "Completed" else child.status
            best_text = f"{best.score(self.metric):.4f}" if best is not None else "-"
            self._plain(f"{child.iteration:>4}  {child.pipeline[:58]:<58} {score_text:>14} {best_text:>8} "
                        f"{child.duration_seconds:>8.1f}")

    def _print(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, highlight=False)
        else:
            self._plain(text)

    def _plain(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def _render(self):
        table = Table(title=f"Leaderboard (top {LIVE_ROWS} by {self.metric})", title_justify="left")
        table.add_column("iter", justify="right")
        table.add_column("pipeline", overflow="ellipsis", max_width=70)
        table.add_column(self.metric, justify="right")
        table.add_column("seconds", justify="right")
        done = [row for row in self.rows if row.status == "Completed"]
        done.sort(key=lambda row: (-row.score(self.metric), row.iteration))
        for row in done[:LIVE_ROWS]:
            table.add_row(str(row.iteration), row.pipeline, f"{row.score(self.metric):.4f}",
                          f"{row.duration_seconds:.1f}")
        return Group(table, self.progress) if self.progress is not None else table


def print_result(console: Console, asset, result) -> None:
    def line(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False)

    manifest = asset.manifest
    metrics = manifest["metrics"]
    line(f"registered model {asset.ref} from run {result.run_id}")
    line(f"  best      {result.best.pipeline} (iteration {result.best.iteration})")
    line(f"  stopped   {result.stop_reason} after {_candidates(result.iterations_run)}, "
         f"{result.elapsed_seconds:.0f} s")
    summary_metrics = ("accuracy", "AUC_weighted", "average_precision_score_weighted", "norm_macro_recall",
                       "f1_score_binary", "log_loss")
    listed = ", ".join(f"{name} {metrics[name]:.4f}" for name in summary_metrics if metrics.get(name) is not None)
    line(f"  CV        {listed}")
    if result.threshold is not None:
        tuned = result.threshold_metrics or {}
        line(f"  threshold {result.threshold:.3f} (out-of-fold accuracy {tuned.get('accuracy', float('nan')):.4f}, "
             f"F1 {tuned.get('f1_score_binary', float('nan')):.4f})")
    if result.run_dir is not None:
        line(f"  run       {result.run_dir}")


def register(cli: click.Group) -> None:
    cli.add_command(train_command)


def _candidates(count: int) -> str:
    return f"{count} candidate" if count == 1 else f"{count} candidates"
