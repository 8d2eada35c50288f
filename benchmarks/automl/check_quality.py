"""Train with `lab train`'s defaults on the full training file and score the held-out test file.

Usage: LAB_DATA_DIR=FOLDER python benchmarks/automl/check_quality.py [--timeout MINUTES] [...]

The test file is read only after training, for the final figures; nothing is tuned on it.
Prints one JSON line with the test metrics, the run's stop reason and elapsed seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time

from lab import data as lab_data
from lab.automl import AutoMLSettings
from lab.automl.metrics import classification_metrics
from lab.training import train_model
from lab.workspace import Workspace

TARGET_ACCURACY = 0.918
TARGET_AUC = 0.947


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=AutoMLSettings.timeout_minutes, help="minutes")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--primary-metric", default=AutoMLSettings.primary_metric)
    parser.add_argument("--threshold-objective", default="auto", help="auto, none, accuracy, f1 or balanced_accuracy")
    parser.add_argument("--drop", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    test_path = lab_data.default_test_path()
    if test_path is None:
        print(f"set {lab_data.DATA_DIR_ENV} to the folder with {lab_data.TEST_FILENAME}", file=sys.stderr)
        return 2
    objective = None if args.threshold_objective == "none" else args.threshold_objective
    settings = AutoMLSettings(timeout_minutes=args.timeout, iterations=args.iterations, seed=args.seed,
                              primary_metric=args.primary_metric, threshold_objective=objective,
                              drop_columns=tuple(args.drop))
    with tempfile.TemporaryDirectory() as root:
        workspace = Workspace(root)
        lab_data.register_dataset(workspace, lab_data.resolve_source())
        started = time.monotonic()
        asset, result = train_model(workspace, None, settings)
        elapsed = time.monotonic() - started

    test = lab_data.read_csv(test_path)
    model = result.model
    X_test, y_test = test.drop(columns=["y"]), test["y"].to_numpy()
    codes = {label: index for index, label in enumerate(model.classes_)}
    proba = model.predict_proba(X_test)
    y_codes = [codes[label] for label in y_test]
    test_metrics = classification_metrics(__import__("numpy").array(y_codes), proba, model.threshold)
    out = {
        "test_accuracy": round(test_metrics["accuracy"], 5),
        "test_AUC_weighted": round(test_metrics["AUC_weighted"], 5),
        "test_f1_yes": round(test_metrics["f1_score_binary"], 5),
        "cv_" + result.primary_metric: round(result.best.score(result.primary_metric), 5),
        "algorithm": result.best.algorithm,
        "threshold": model.threshold,
        "iterations": result.iterations_run,
        "stop_reason": result.stop_reason,
        "train_seconds": round(elapsed, 1),
        "targets_met": test_metrics["accuracy"] >= TARGET_ACCURACY and test_metrics["AUC_weighted"] >= TARGET_AUC,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
