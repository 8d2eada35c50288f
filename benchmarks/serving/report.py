"""Write the serving section of benchmarks/RESULTS.md from the JSON files of the serving benchmarks.

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
        "`benchmarks/serving/compare.py`: the same model, one BLAS/OpenMP thread per worker process, one worker "
        "per server unless the row says 2 workers, one run of "
        f"{compare['rounds']} rounds with all servers up; each figure is the median over "
        f"the rounds. Per round and target: {compare['latency_requests']} sequential one-record requests for "
        f"latency, {compare['throughput_requests']} at concurrency 8 for throughput. Machine: {compare['machine']}.",
        "",
    ]
    if "load_average_per_round" in compare:
        loads = compare["load_average_per_round"]
        rows += [
            f"1-minute load average before the run {compare['load_average_at_start'][0]}, at the start of each "
            f"round {', '.join(str(load) for load in loads)} (the benchmark's own client and servers included).",
            "",
        ]
    rows += [
        "| target | p50 ms | p99 ms | requests/s at concurrency 8 |",
        "|---|---|---|---|",
    ]
    names = {
        "service": "scoring service (front + inference server, Bearer key)",
        "bare": "bare inference server (gunicorn, no front)",
        "mlflow": "`mlflow models serve --env-manager local`",
        "service_2w": "scoring service, 2 workers (`lab deploy --workers 2`)",
        "mlflow_2w": "`mlflow models serve --env-manager local -w 2`, 2 workers",
    }
    for key, label in names.items():
        if key in compare:
            figures = compare[key]
            rows.append(f"| {label} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['requests_per_s_c8']:.1f} |")
    for method in ("predict_proba", "predict"):
        figures = in_process[method]
        rows.append(f"| in-process `{method}`, one record (floor) | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | "
                    f"{figures['calls_per_s_one_thread']:.1f} (one thread, sequential) |")
    per_round = compare.get("requests_per_s_c8_per_round")
    if per_round:
        rows += ["", "Requests/s at concurrency 8 in each round, in round order (the order of targets rotates):", ""]
        rows += [f"- {names[key]}: {', '.join(f'{value:.0f}' for value in values)}"
                 for key, values in per_round.items() if key in names]
    ratios = compare["ratios"]
    rows += ["", "| ratio | value | target |", "|---|---|---|"]
    targets = {
        "service_p50_over_bare_p50": "below 1.10",
        "service_rps_over_mlflow_rps": "at least 1.00",
        "service_2w_rps_over_mlflow_2w_rps": "at least 1.00",
    }
    for name, value in ratios.items():
        rows.append(f"| {name.replace('_', ' ')} | {value} | {targets.get(name, '')} |")
    rows.append("")
    return rows


def request_cpu_section(cpu: dict) -> list[str]:
    http, in_process = cpu["http_cpu_ms_per_request"], cpu["in_process_cpu_ms"]
    return [
        "### CPU time of one one-record request",
        "",
        "`benchmarks/serving/request_cpu.py`: CPU milliseconds per request. The HTTP figures are from /proc over "
        f"{http['requests']} requests at concurrency 8 to the service with 1 worker "
        f"({http['requests_per_s_c8']} requests/s); the in-process ones are the median (minimum) over alternating "
        f"batches, one thread. Machine: {cpu['machine']}, load average at start {cpu['load_average_at_start']}.",
        "",
        "| part | CPU ms per request |",
        "|---|---|",
        f"| service over HTTP (gunicorn master and worker) | {http['server']:.2f} |",
        f"| load-test client | {http['client']:.2f} |",
        "| service WSGI app in-process (front, Flask, inference server, entry script, model) | "
        f"{in_process['wsgi_in_process']['median']:.2f} ({in_process['wsgi_in_process']['min']:.2f}) |",
        "| the same app without the front (the bare server's app) | "
        f"{in_process['wsgi_without_front']['median']:.2f} ({in_process['wsgi_without_front']['min']:.2f}) |",
        "| model `predict` alone | "
        f"{in_process['model_predict']['median']:.2f} ({in_process['model_predict']['min']:.2f}) |",
        "| entry script input validation and DataFrame build (`to_frame`) | "
        f"{in_process['entry_to_frame']['median']:.2f} ({in_process['entry_to_frame']['min']:.2f}) |",
        "",
    ]


def ensemble_section(ensemble: dict) -> list[str]:
    p50 = ensemble["p50_ms"]
    rows = [
        "### One-record scoring of a VotingEnsemble: shared featurization",
        "",
        f"`benchmarks/serving/ensemble.py`: a VotingEnsemble of {len(ensemble['members'])} portfolio pipelines "
        "refitted on the 2,000-row training sample, `predict_proba` on one record, "
        f"{ensemble['calls']} alternating calls per variant, one thread. Machine: {ensemble['machine']}.",
        "",
        "| figure | value |",
        "|---|---|",
        "| members | " + "; ".join(ensemble["members"]) + " |",
        f"| featurizer group of each member | {ensemble['featurization_groups']} |",
        f"| p50, each member's whole pipeline | {p50['per_member']:.2f} ms |",
        f"| p50, one transform per featurizer group | {p50['shared']:.2f} ms |",
        f"| ratio | {p50['shared'] / p50['per_member']:.2f} |",
        "",
    ]
    return rows


def main() -> int:
    lines = [START, "## Serving", ""]
    soak_path, compare_path = WORK_DIR / "soak.json", WORK_DIR / "compare.json"
    if soak_path.is_file():
        lines += soak_section(json.loads(soak_path.read_text(encoding="utf-8")))
    if compare_path.is_file():
        lines += compare_section(json.loads(compare_path.read_text(encoding="utf-8")))
    request_cpu_path = WORK_DIR / "request_cpu.json"
    if request_cpu_path.is_file():
        lines += request_cpu_section(json.loads(request_cpu_path.read_text(encoding="utf-8")))
    ensemble_path = WORK_DIR / "ensemble.json"
    if ensemble_path.is_file():
        lines += ensemble_section(json.loads(ensemble_path.read_text(encoding="utf-8")))
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
