"""A load test of a scoring URI in the manner of Apache Bench (``ab -n N -c C -p data.json``).

Every request posts the same body with the key. A request counts as failed when it raises or its
status is not 2xx; latencies are measured per request on the client, in milliseconds.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

import requests

DEFAULT_TIMEOUT_S = 30.0


@dataclass
class LoadTestResult:
    """Figures of one load test; latencies in milliseconds, throughput in requests per second."""

    requests: int
    concurrency: int
    failed: int
    duration_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    status_counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by linear interpolation, as numpy's default does."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def run_load_test(
    uri: str,
    body: bytes,
    key: str | None,
    requests_total: int = 10,
    concurrency: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_progress: Callable[[int], None] | None = None,
) -> LoadTestResult:
    """Send ``requests_total`` POSTs of ``body`` to ``uri`` with ``concurrency`` at a time."""
    if requests_total < 1:
        raise ValueError(f"requests must be at least 1, got {requests_total}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    concurrency = min(concurrency, requests_total)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    remaining = iter(range(requests_total))
    local = threading.local()
    stopping = threading.Event()

    def worker() -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        while not stopping.is_set():
            with lock:
                if next(remaining, None) is None:
                    return
            started = time.perf_counter()
            try:
                response = session.post(uri, data=body, headers=headers, timeout=timeout_s)
                status = str(response.status_code)
                error = None if response.ok else f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                status, error = "error", exc.__class__.__name__
            elapsed_ms = (time.perf_counter() - started) * 1000
            with lock:
                statuses[status] += 1
                if error:
                    errors[error] += 1
                else:
                    latencies.append(elapsed_ms)
                done = sum(statuses.values())
            if on_progress is not None:
                on_progress(done)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(worker) for _ in range(concurrency)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            # Let the workers finish their request in flight and send no more, so Ctrl-C ends
            # the test at once instead of after the remaining requests.
            stopping.set()
            raise
    duration_s = time.perf_counter() - started

    ordered = sorted(latencies)
    failed = sum(errors.values())
    latency = {
        "mean": statistics.fmean(ordered) if ordered else float("nan"),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else float("nan"),
    }
    return LoadTestResult(
        requests=requests_total,
        concurrency=concurrency,
        failed=failed,
        duration_s=round(duration_s, 4),
        requests_per_s=round(requests_total / duration_s, 2) if duration_s > 0 else float("nan"),
        latency_ms={name: round(value, 3) for name, value in latency.items()},
        status_counts=dict(statuses),
        errors=dict(errors),
    )
