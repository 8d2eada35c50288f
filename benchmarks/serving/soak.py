"""Soak the local scoring service: 10,000 authenticated requests at concurrency 32 on loopback.

Reports failed requests and the resident memory of the gunicorn master and workers after the
first 1,000 requests and after the whole run. The service passes when no request failed and
memory grew by at most 10%.

    LAB_DATA_DIR=/path/to/data python benchmarks/serving/soak.py [--requests 10000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK_DIR, build_model, one_record, rss_bytes  # noqa: E402

from lab.loadtest import run_load_test  # noqa: E402
from local_scoring.keys import read_keys  # noqa: E402
from local_scoring.process import ServiceSpec, start, stop  # noqa: E402

WARMUP_REQUESTS = 1_000
MAX_GROWTH = 0.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--output", type=Path, default=WORK_DIR / "soak.json")
    args = parser.parse_args()

    model_dir = build_model()
    services = WORK_DIR / "services"
    state = start(services, ServiceSpec(name="soak", model_dir=model_dir, port=0, workers=args.workers))
    try:
        key = read_keys(Path(state["keys_file"]))["primaryKey"]
        body = json.dumps({"data": [one_record(model_dir)]}).encode("utf-8")
        warmup = run_load_test(state["scoring_uri"], body, key, WARMUP_REQUESTS, args.concurrency)
        rss_warm = rss_bytes(state["pid"])
        started = time.perf_counter()
        rest = run_load_test(state["scoring_uri"], body, key, args.requests - WARMUP_REQUESTS, args.concurrency)
        elapsed = time.perf_counter() - started
        rss_end = rss_bytes(state["pid"])
    finally:
        stop(services, "soak")

    growth = (rss_end - rss_warm) / rss_warm
    result = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "failed": warmup.failed + rest.failed,
        "status_counts": {"warmup": warmup.status_counts, "rest": rest.status_counts},
        "rss_after_warmup_mb": round(rss_warm / 2**20, 1),
        "rss_after_run_mb": round(rss_end / 2**20, 1),
        "rss_growth": round(growth, 4),
        "requests_per_s_after_warmup": round((args.requests - WARMUP_REQUESTS) / elapsed, 1),
        "latency_ms_after_warmup": rest.latency_ms,
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    passed = result["failed"] == 0 and growth <= MAX_GROWTH
    print(f"{'PASS' if passed else 'FAIL'}: {result['failed']} failed, memory growth {growth:+.1%} (limit {MAX_GROWTH:.0%})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
