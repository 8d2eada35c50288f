"""Summarize a bench.py results file: medians per system and budget, and ratios against FLAML.

Usage: python benchmarks/automl/summarize.py benchmarks/.work/automl.json [more.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

METRICS = ("AUC_weighted", "accuracy", "f1_yes")


def medians(runs: list[dict]) -> dict:
    """Return median metrics, seconds and peak memory per (system, budget, threshold objective)."""
    groups: dict = {}
    for run in runs:
        if "error" in run:
            continue
        groups.setdefault((run["system"], run["budget_s"], run["threshold_objective"]), []).append(run)
    out = {}
    for key, rows in groups.items():
        out[key] = {name: statistics.median(row[name] for row in rows)
                    for name in (*METRICS, "seconds", "peak_rss_mb", "load_before")}
        out[key]["runs"] = len(rows)
    return out


def ratio_table(table: dict) -> str:
    lines = ["| budget (s) | AUC_weighted ours / FLAML | accuracy ours / FLAML |", "|---|---|---|"]
    for (system, budget, objective), ours in sorted(table.items(), key=lambda item: item[0][1]):
        flaml = table.get(("flaml", budget, None))
        if system != "ours" or objective not in (None, "auto") or flaml is None:
            continue
        lines.append(f"| {budget:g} | {ours['AUC_weighted'] / flaml['AUC_weighted']:.4f} "
                     f"| {ours['accuracy'] / flaml['accuracy']:.4f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="JSON files written by bench.py --out")
    args = parser.parse_args()
    runs = []
    for path in args.results:
        runs += json.loads(path.read_text())
    table = medians(runs)
    print("| system | budget (s) | threshold objective | runs | test AUC_weighted | test accuracy | test F1 (yes) "
          "| wall time (s) | peak RSS (MB) | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (system, budget, objective), row in sorted(table.items(), key=lambda item: (item[0][1], item[0][0],
                                                                                   str(item[0][2]))):
        print(f"| {system} | {budget:g} | {objective or '-'} | {row['runs']} | {row['AUC_weighted']:.4f} "
              f"| {row['accuracy']:.4f} | {row['f1_yes']:.4f} | {row['seconds']:.1f} | {row['peak_rss_mb']:.0f} "
              f"| {row['load_before']:.1f} |")
    print()
    print(ratio_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
