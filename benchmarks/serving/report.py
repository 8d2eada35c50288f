"""Write the serving section of benchmarks/RESULTS.md from soak.json and compare.json.

Only the text between ``<!-- serving:start -->`` and ``<!-- serving:end -->`` is replaced; the
file and the markers are created when missing.

    python benchmarks/serving/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, WORK_DIR  # noqa: E402

RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- serving:start -->", "<!-- serving:end -->"


def soak_section(soak: dict) -> list[str]:
    verdict = "pass" if soak["failed"] == 0 and soak["rss_growth"] <= 0.10 else "FAIL"
    return [
        "### Soak: 10,000 requests at concurrency 32",
        "",
        f"`benchmarks/serving/soak.py`: {soak['requests']:,} one-record authenticated requests at concurrency "
        f"{soak['concurrency']} on loopback, {soak['workers']} worker. Machine: {soak['machine']}.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| failed requests | {soak['failed']} |",
        f"| RSS of master + workers after the first 1,000 requests | {soak['rss_after_warmup_mb']} MB |",
        f"| RSS after all requests | {soak['rss_after_run_mb']} MB |",
        f"| RSS growth (limit +10%) | {soak['rss_growth']:+.1%} ({verdict}) |",
        f"| throughput after the first 1,000 | {soak['requests_per_s_after_warmup']} requests/s |",
        f"| latency p50 / p99 at concurrency {soak['concurrency']} | {soak['latency_ms_after_warmup']['p50']:.1f} / "
        f"{soak['latency_ms_after_warmup']['p99']:.1f} ms |",
        "",
    ]


def compare_section(compare: dict) -> list[str]:
    in_process = compare["in_process"]
    rows = [
        "### Latency and throughput against the bare server, MLflow and in-process scoring",
        "",
        "`benchmarks/serving/compare.py`: the same model, one worker process and one BLAS/OpenMP thread per "
        f"server, one run of {compare['rounds']} rounds with all servers up; each figure is the median over "
        f"the rounds. Per round and target: {compare['latency_requests']} sequential one-record requests for "
        f"latency, {compare['throughput_requests']} at concurrency 8 for throughput. Machine: {compare['machine']}.",
        "",
        "| target | p50 ms | p99 ms | requests/s at concurrency 8 |",
        "|---|---|---|---|",
    ]
    names = {
        "service": "scoring service (front + inference server, Bearer key)",
        "bare": "bare inference server (gunicorn, no front)",
        "mlflow": "`mlflow models serve --env-manager local`",
    }
    for key, label in names.items():
        if key in compare:
            figures = compare[key]
            rows.append(f"| {label} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['requests_per_s_c8']:.1f} |")
    for method in ("predict_proba", "predict"):
        figures = in_process[method]
        rows.append(f"| in-process `{method}`, one record (floor) | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | "
                    f"{figures['calls_per_s_one_thread']:.1f} (one thread, sequential) |")
    ratios = compare["ratios"]
    rows += ["", "| ratio | value | target |", "|---|---|---|"]
    targets = {
        "service_p50_over_bare_p50": "below 1.10",
        "service_rps_over_mlflow_rps": "at least 1.00",
    }
    for name, value in ratios.items():
        rows.append(f"| {name.replace('_', ' ')} | {value} | {targets.get(name, '')} |")
    rows.append("")
    return rows


def main() -> int:
    lines = [START, "## Serving", ""]
    soak_path, compare_path = WORK_DIR / "soak.json", WORK_DIR / "compare.json"
    if soak_path.is_file():
        lines += soak_section(json.loads(soak_path.read_text(encoding="utf-8")))
    if compare_path.is_file():
        lines += compare_section(json.loads(compare_path.read_text(encoding="utf-8")))
    notes_path = Path(__file__).with_name("NOTES.md")
    if notes_path.is_file():
        lines += [notes_path.read_text(encoding="utf-8").strip(), ""]
    lines.append(END)
    section = "\n".join(lines)

    text = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n\n"
    if START in text and END in text:
        before, _, rest = text.partition(START)
        _, _, after = rest.partition(END)
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text, encoding="utf-8")
    print(f"wrote the serving section of {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
