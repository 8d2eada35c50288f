"""Benchmark the local AutoML against FLAML on Bank Marketing, at equal time budgets.

Usage:
    LAB_DATA_DIR=FOLDER python benchmarks/automl/bench.py --budgets 10 60 --repeats 3 \
        --flaml-python /tmp/automl-venv/bin/python --out benchmarks/.work/automl.json

Each run is its own process, so its peak memory (ru_maxrss) is its own. Runs alternate between
the systems, so load from other processes falls on both alike. Both train on
bankmarketing_train.csv only; bankmarketing_test.csv gives the final scores and nothing else.
FLAML runs in another interpreter (``--flaml-python``) because it is not a project dependency;
it needs ``flaml[automl]`` 2.x there and optimizes ``roc_auc``. The script prints a Markdown table
of medians and writes every run to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

LABEL = "y"
POSITIVE = "yes"


def load_split():
    from lab import data as lab_data

    train = lab_data.read_csv(lab_data.resolve_source())
    test_path = lab_data.default_test_path()
    if test_path is None:
        raise SystemExit(f"set {lab_data.DATA_DIR_ENV} to the folder with {lab_data.TEST_FILENAME}")
    test = lab_data.read_csv(test_path)
    schema = {"label": LABEL, "columns": [column.to_json() for column in lab_data.infer_schema(train, LABEL)]}
    return train, test, schema


def test_scores(proba_positive, predicted, y_test) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    truth = (y_test == POSITIVE).astype(int)
    return {
        # For two classes the weighted one-vs-rest AUC equals the plain AUC.
        "AUC_weighted": roc_auc_score(truth, proba_positive),
        "accuracy": accuracy_score(y_test, predicted),
        "f1_yes": f1_score(y_test, predicted, pos_label=POSITIVE),
    }


def run_ours(budget_seconds: float, seed: int, threshold_objective: str | None) -> dict:
    from lab.automl import AutoMLSettings, run_automl

    train, test, schema = load_split()
    settings = AutoMLSettings(timeout_minutes=budget_seconds / 60, seed=seed,
                              threshold_objective=threshold_objective or "auto")
    started = time.monotonic()
    result = run_automl(train.drop(columns=[LABEL]), train[LABEL], schema, settings)
    elapsed = time.monotonic() - started
    model = result.model
    positive = list(model.classes_).index(POSITIVE)
    X_test = test.drop(columns=[LABEL])
    scores = test_scores(model.predict_proba(X_test)[:, positive], model.predict(X_test), test[LABEL])
    return {**scores, "seconds": elapsed, "algorithm": result.best.algorithm, "iterations": result.iterations_run,
            "stop_reason": result.stop_reason, "threshold": result.threshold,
            "threshold_max_accuracy_loss": result.threshold_max_accuracy_loss}


def run_flaml(budget_seconds: float, seed: int) -> dict:
    from flaml import AutoML

    train, test, _ = load_split()
    automl = AutoML()
    started = time.monotonic()
    automl.fit(train.drop(columns=[LABEL]), train[LABEL], task="classification", metric="roc_auc",
               time_budget=budget_seconds, seed=seed, verbose=0)
    elapsed = time.monotonic() - started
    X_test = test.drop(columns=[LABEL])
    positive = list(automl.classes_).index(POSITIVE)
    scores = test_scores(automl.predict_proba(X_test)[:, positive], automl.predict(X_test), test[LABEL])
    return {**scores, "seconds": elapsed, "algorithm": automl.best_estimator, "iterations": None,
            "stop_reason": "time_budget", "threshold": None}


def worker(args) -> int:
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()[0]
    if args.worker == "flaml":
        out = run_flaml(args.budget, args.seed)
    else:
        out = run_ours(args.budget, args.seed, args.threshold_objective)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_before"] = load_before
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))
    return 0


def launch(python: str, system: str, budget: float, seed: int, threshold_objective: str | None) -> dict:
    command = [python, __file__, "--worker", system, "--budget", str(budget), "--seed", str(seed)]
    if threshold_objective:
        command += ["--threshold-objective", threshold_objective]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=budget * 10 + 600)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def median(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if key in row and row[key] is not None]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=("ours", "flaml"))
    parser.add_argument("--budget", type=float, help="worker: time budget in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold-objective")
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 60], help="seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--f1-budget", type=float, default=60, help="seconds; 0 skips the f1-objective runs")
    parser.add_argument("--flaml-python", help="interpreter with flaml[automl] 2.x; omitted: no FLAML runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/.work/automl.json"))
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    runs = []
    plan = []
    for budget in args.budgets:
        for seed in range(args.repeats):
            plan.append(("ours", budget, seed, "auto"))
            if args.flaml_python:
                plan.append(("flaml", budget, seed, None))
    if args.f1_budget:
        plan += [("ours", args.f1_budget, seed, "f1") for seed in range(args.repeats)]
    for system, budget, seed, objective in plan:
        python = args.flaml_python if system == "flaml" else sys.executable
        row = {"system": system, "budget_s": budget, "seed": seed, "threshold_objective": objective,
               **launch(python, system, budget, seed, objective)}
        runs.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=2) + "\n")
    print(markdown_table(runs))
    return 0


def markdown_table(runs: list[dict]) -> str:
    lines = [
        "| system | budget (s) | threshold objective | runs | test AUC_weighted | test accuracy | test F1 (yes) "
        "| wall time (s) | peak RSS (MB) | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for run in runs:
        groups.setdefault((run["system"], run["budget_s"], run["threshold_objective"]), []).append(run)
    for (system, budget, objective), rows in groups.items():
        ok = [row for row in rows if "error" not in row]
        lines.append(
            f"| {system} | {budget:g} | {objective or '-'} | {len(ok)}/{len(rows)} | {median(ok, 'AUC_weighted'):.4f} "
            f"| {median(ok, 'accuracy'):.4f} | {median(ok, 'f1_yes'):.4f} | {median(ok, 'seconds'):.1f} "
            f"| {median(ok, 'peak_rss_mb'):.0f} | {median(ok, 'load_before'):.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
