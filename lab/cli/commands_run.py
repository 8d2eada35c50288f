"""`lab run`: data, train, deploy, endpoint, benchmark and report, end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from lab import client as lab_client
from lab import data as lab_data
from lab import service as lab_service
from lab.evaluate import evaluate_model
from lab.loadtest import run_load_test
from lab.models import DEFAULT_MODEL_NAME, load_model
from lab.report import write_report
from local_scoring.process import DEFAULT_SERVICE_NAME


@click.command("run")
@click.option("--path", "data_path", type=click.Path(dir_okay=False),
              help="Training CSV; default: $LAB_DATA_DIR/bankmarketing_train.csv or the official download.")
@click.option("--label", default=lab_data.DEFAULT_LABEL, show_default=True, help="Label column.")
@click.option("--test-file", type=click.Path(dir_okay=False),
              help="Held-out CSV for the final figures only; default: $LAB_DATA_DIR/bankmarketing_test.csv if present.")
@click.option("--primary-metric", default="AUC_weighted", show_default=True,
              type=click.Choice(["accuracy", "AUC_weighted", "average_precision_score_weighted",
                                 "norm_macro_recall", "precision_score_weighted"]),
              help="Metric that ranks the leaderboard and picks the best model (Azure's names).")
@click.option("--timeout", "timeout_minutes", default=4.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Training budget in minutes (experiment_timeout_minutes).")
@click.option("--threshold-objective", type=click.Choice(["auto", "accuracy", "f1", "balanced_accuracy", "none"]),
              default="auto", show_default=True,
              help="Tune the decision threshold on out-of-fold predictions for this, as `lab train` does; "
                   "'none' keeps the most probable class.")
@click.option("--drop", "drop_columns", multiple=True, metavar="COLUMN",
              help="Train without this column (repeatable), e.g. one flagged as target leakage.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed of the search.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the scoring service (0 picks a free port).")
@click.option("-n", "--requests", "requests_total", default=100, show_default=True, type=click.IntRange(1),
              help="Requests of the load test.")
@click.option("-c", "--concurrency", default=4, show_default=True, type=click.IntRange(1, 1024),
              help="Concurrency of the load test.")
@click.option("--report-dir", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for report.md and its figures.")
@click.option("--keep-service", is_flag=True, help="Leave the scoring service running at the end.")
@click.pass_obj
def run_command(workspace, data_path, label, test_file, primary_metric, timeout_minutes, threshold_objective,
                drop_columns, seed, port, requests_total, concurrency, report_dir, keep_service):
    """Run the whole local flow on the default data and write a report.

    Steps: register the dataset, run AutoML, deploy the best model behind key auth, score the
    exercise's records, load-test the endpoint, evaluate on the test file if one is given, and
    write report.md. The service is stopped at the end unless --keep-service; Ctrl-C at any step
    stops it too and leaves the workspace consistent.
    """
    from rich.console import Console

    from lab.automl import AutoMLSettings
    from lab.cli.commands_serve import print_compose_env
    from lab.cli.commands_train import TrainDisplay, print_result
    from lab.training import train_model

    steps: list[tuple[str, float]] = []
    sections: dict = {"steps": steps}
    report_folder = Path(report_dir)
    service_started = False

    def step(name: str):
        click.secho(f"\n== {name}", bold=True)
        return time.perf_counter()

    settings = AutoMLSettings(
        primary_metric=primary_metric, timeout_minutes=timeout_minutes, seed=seed,
        threshold_objective=None if threshold_objective == "none" else threshold_objective,
        drop_columns=tuple(drop_columns),
    ).validate()
    current_step = "data"
    try:
        started = step("data: register the dataset")
        source = lab_data.resolve_source(data_path)
        dataset = lab_data.register_dataset(workspace, source, label=label)
        sections["dataset"] = dataset
        click.echo(f"registered {dataset.ref}: {dataset.manifest['rows']} rows, {dataset.manifest['class_balance']}")
        steps.append(("data", time.perf_counter() - started))

        started = step(f"train: AutoML for {timeout_minutes:g} min, primary metric {primary_metric}")
        current_step = "train"
        display = TrainDisplay(Console(), primary_metric)
        try:
            model_asset, result = train_model(workspace, dataset.ref, settings, DEFAULT_MODEL_NAME, on_event=display)
        finally:
            display.close()
        sections["model"] = model_asset
        print_result(display.console, model_asset, result)
        print_compose_env(workspace, model_asset.ref)
        steps.append(("train", time.perf_counter() - started))

        test_path = Path(test_file) if test_file else lab_data.default_test_path()
        if test_path is not None:
            current_step = "evaluate"
            started = step(f"evaluate: final figures on {test_path}")
            test_frame = lab_data.read_csv(test_path, label)
            model = load_model(model_asset)
            sections["test_metrics"] = evaluate_model(model, test_frame, label)
            sections["test_path"] = str(test_path)
            shown = sections["test_metrics"]
            click.echo(f"test accuracy {shown['accuracy']:.4f}, AUC_weighted {shown['AUC_weighted']:.4f}")
            sections["figures"] = _figures(model_asset, model, test_frame, label, report_folder)
            steps.append(("evaluate", time.perf_counter() - started))

        current_step = "deploy"
        started = step("deploy: start the scoring service")
        service = lab_service.deploy(workspace, model_asset.ref, {"name": DEFAULT_SERVICE_NAME, "port": port})
        service_started = True
        click.echo(f"scoring URI {service.scoring_uri}, swagger URI {service.swagger_uri}")
        steps.append(("deploy", time.perf_counter() - started))

        current_step = "endpoint"
        started = step("endpoint: score the exercise's two records")
        primary_key = service.get_keys()[0]
        body_path = report_folder / "data.json"
        report_folder.mkdir(parents=True, exist_ok=True)
        answer = lab_client.score_records(service.scoring_uri, primary_key, body_path=body_path)
        click.echo(f"HTTP {answer.status}: predictions {answer.predictions}")
        sections["endpoint"] = {
            "uri": service.scoring_uri, "swagger_uri": service.swagger_uri, "status": answer.status,
            "predictions": answer.predictions, "elapsed_ms": answer.elapsed_ms,
        }
        steps.append(("endpoint", time.perf_counter() - started))

        current_step = "benchmark"
        started = step(f"benchmark: {requests_total} requests at concurrency {concurrency}")
        load = run_load_test(service.scoring_uri, body_path.read_bytes(), primary_key, requests_total, concurrency)
        sections["benchmark"] = load.to_json()
        click.echo(f"{load.requests_per_s:.1f} requests/s, p50 {load.latency_ms['p50']:.1f} ms, "
                   f"p99 {load.latency_ms['p99']:.1f} ms, {load.failed} failed")
        steps.append(("benchmark", time.perf_counter() - started))
        current_step = None
    finally:
        if current_step is not None:
            sections["failed_step"] = current_step
        if service_started and not keep_service:
            lab_service.stop(workspace, DEFAULT_SERVICE_NAME)
            click.echo(f"service {DEFAULT_SERVICE_NAME} stopped")
        if sections.get("dataset") is not None:
            path = write_report(report_folder, sections)
            (report_folder / "run.json").write_text(json.dumps(_summary(sections), indent=2, default=str) + "\n")
            click.secho(f"\nreport written to {path}", bold=True)
    if keep_service:
        click.echo(f"service {DEFAULT_SERVICE_NAME} keeps running; stop it with `lab deploy --stop`")


def _figures(model_asset, model, test_frame, label, report_folder: Path) -> dict:
    try:
        from lab.automl.report import write_figures
    except ImportError:
        return {}
    X = test_frame.drop(columns=[label])
    run_dir = model_asset.manifest.get("run_dir")
    paths = write_figures(Path(run_dir) if run_dir else None, model, X, test_frame[label], report_folder / "figures")
    return {name: str(Path(path).relative_to(report_folder)) for name, path in paths.items()}


def _summary(sections: dict) -> dict:
    return {
        "dataset": sections["dataset"].ref if sections.get("dataset") else None,
        "model": sections["model"].ref if sections.get("model") else None,
        "cv_metrics": sections["model"].manifest.get("metrics") if sections.get("model") else None,
        "test_metrics": sections.get("test_metrics"),
        "endpoint": sections.get("endpoint"),
        "benchmark": sections.get("benchmark"),
        "steps": dict(sections.get("steps") or []),
    }


def register(cli: click.Group) -> None:
    cli.add_command(run_command)
