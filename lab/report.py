"""The Markdown report of `lab run`: dataset, leaderboard, metrics, endpoint answer and load test."""

from __future__ import annotations

from pathlib import Path

from lab.workspace import atomic_write_text

METRICS_SHOWN = (
    "accuracy", "AUC_weighted", "average_precision_score_weighted", "norm_macro_recall",
    "precision_score_weighted", "balanced_accuracy", "log_loss",
)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _table(headers: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def _guardrails(manifest: dict) -> list[str]:
    """Render the guardrail alerts and the figures with and without suspected leaking columns."""
    out = []
    alerts = manifest.get("guardrail_alerts") or []
    if alerts:
        out += ["### Data guardrails", ""] + [f"- {alert}" for alert in alerts] + [""]
    comparison = manifest.get("leakage_comparison") or {}
    if comparison.get("columns"):
        columns = ", ".join(f"`{name}`" for name in comparison["columns"])
        out += [f"### With and without {columns} (cross-validation, {comparison.get('pipeline')})", ""]
        if comparison.get("without"):
            names = [name for name in METRICS_SHOWN if name in comparison["with"]]
            rows = [[name, comparison["with"].get(name), comparison["without"].get(name)] for name in names]
            out += _table(["metric", "with", "without"], rows) + [""]
        else:
            out += [f"Not compared: {comparison.get('skipped', 'no figures')}.", ""]
    if manifest.get("dropped_columns"):
        out += [f"Trained without: {', '.join(manifest['dropped_columns'])}.", ""]
    return out


def render(sections: dict) -> str:
    """Render the report from the parts `lab run` collected; missing parts are left out."""
    out = ["# Lab run report", ""]
    if sections.get("failed_step"):
        out += [f"**Incomplete: the run stopped at the {sections['failed_step']} step** (failed or interrupted); "
                "the sections below are what finished before it.", ""]
    if sections.get("dataset"):
        out += _dataset_section(sections["dataset"])
    if sections.get("model"):
        out += _model_section(sections["model"].ref, sections["model"].manifest, sections)
    figures = sections.get("figures") or {}
    if figures:
        out += ["### Figures", ""]
        out += [f"![{name}]({path})" for name, path in figures.items()] + [""]
    out += _service_sections(sections)
    return "\n".join(out)


def _dataset_section(dataset) -> list[str]:
    manifest = dataset.manifest
    balance = ", ".join(f"{k}: {v}" for k, v in manifest["class_balance"].items())
    return [
        "## Dataset", "",
        f"- registered as `{dataset.ref}` from `{manifest['source']}`",
        f"- sha256 `{manifest['sha256']}`",
        f"- {manifest['rows']} rows, {manifest['columns']} feature columns, label `{manifest['label']}`",
        f"- class balance: {balance} (minority share {manifest['minority_share']:.2%})", "",
    ]


def _model_section(ref: str, manifest: dict, sections: dict) -> list[str]:
    out = ["## Best model", "",
           f"- registered as `{ref}`: {manifest.get('algorithm')}",
           f"- primary metric `{manifest.get('primary_metric')}`; decision threshold "
           f"{_fmt(manifest.get('threshold'))}", ""]

    leaderboard = manifest.get("leaderboard_top") or []
    if leaderboard:
        out += ["### Leaderboard (cross-validation)", ""]
        metric = manifest.get("primary_metric")
        rows = [
            [index + 1, entry.get("pipeline") or entry.get("algorithm"), entry.get("metrics", {}).get(metric),
             entry.get("metrics", {}).get("accuracy"), entry.get("duration_seconds")]
            for index, entry in enumerate(leaderboard)
        ]
        out += _table(["rank", "pipeline", metric, "accuracy", "duration (s)"], rows) + [""]
    out += _guardrails(manifest)

    # With a tuned threshold, the out-of-fold figures at that threshold are the ones comparable
    # with the test file, whose labels come from the model's predict().
    cv = manifest.get("threshold_metrics") or manifest.get("metrics") or {}
    cv_title = "cross-validation"
    if manifest.get("threshold_metrics"):
        cv_title += f" (threshold {manifest['threshold']:.3f})"
    test = sections.get("test_metrics") or {}
    names = [name for name in METRICS_SHOWN if name in cv or name in test]
    names += sorted(name for name in test if name not in names and name != "rows")
    out += ["### Metrics", ""]
    header = ["metric", cv_title] + ([f"test file ({test.get('rows')} rows)"] if test else [])
    out += _table(header, [[name, cv.get(name)] + ([test.get(name)] if test else []) for name in names]) + [""]
    if test:
        out += [f"Test file: `{sections.get('test_path')}`; used only for these final figures.", ""]
    return out


def _service_sections(sections: dict) -> list[str]:
    """Render the endpoint answer, the load test and the step timings."""
    out = []
    endpoint = sections.get("endpoint")
    if endpoint:
        out += ["## Endpoint", "",
                f"- scoring URI `{endpoint['uri']}`, swagger `{endpoint['swagger_uri']}`",
                f"- the exercise's two records (keys in alphabetical order) -> HTTP {endpoint['status']}, "
                f"predictions `{endpoint['predictions']}` in {endpoint['elapsed_ms']:.1f} ms", ""]

    load = sections.get("benchmark")
    if load:
        latency = load["latency_ms"]
        out += ["## Load test", "",
                f"{load['requests']} requests at concurrency {load['concurrency']}: "
                f"{load['requests_per_s']:.1f} requests/s, {load['failed']} failed; latency p50 {latency['p50']:.1f} ms, "
                f"p95 {latency['p95']:.1f} ms, p99 {latency['p99']:.1f} ms", ""]

    steps = sections.get("steps") or []
    if steps:
        rows = [[name, f"{seconds:.1f}"] for name, seconds in steps]
        rows.append(["total", f"{sum(seconds for _, seconds in steps):.1f}"])
        out += ["## Steps", ""] + _table(["step", "seconds"], rows) + [""]
    return out


def write_report(folder: Path, sections: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.md"
    atomic_write_text(path, render(sections))
    return path
