"""CPU time of one one-record request to the scoring service, split by part.

The figures, in milliseconds of CPU time per request:

- ``server``: the service (gunicorn master and one worker) while it serves requests at
  concurrency 8 on loopback, from /proc, and ``client`` for this script's own load-test client;
- ``wsgi_in_process``: the service's WSGI app (front, Flask, inference server, entry script and
  model) called in this process with a prepared request, without gunicorn and sockets, and
  ``wsgi_without_front`` for the same app without the front (the bare server's app);
- ``model_predict``: the model's ``predict`` on the prepared one-record DataFrame;
- ``entry_to_frame``: the entry script's input validation and DataFrame build (``to_frame``).

The in-process figures alternate in batches of 20 calls, one BLAS/OpenMP thread, and report the
median and the minimum over the batches, because the minimum is least affected by other jobs on
the machine.

    LAB_DATA_DIR=/path/to/data python benchmarks/serving/request_cpu.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK_DIR, build_model, machine_description, one_record, process_tree_sum, write_result  # noqa: E402

from lab.loadtest import run_load_test  # noqa: E402
from local_scoring import keys as service_keys  # noqa: E402
from local_scoring.process import ServiceSpec, service_env, start, stop  # noqa: E402

HTTP_REQUESTS = 800
BATCHES = 40
BATCH_CALLS = 20


def process_tree_cpu_s(pid: int) -> float:
    """Return the user plus system CPU time of ``pid`` and its descendants, from /proc, in seconds."""

    def read(current: int) -> float:
        with open(f"/proc/{current}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return process_tree_sum(pid, read)


def measure_http(model_dir: Path, body: bytes) -> dict:
    services = WORK_DIR / "services"
    state = start(services, ServiceSpec(name="request-cpu", model_dir=model_dir, port=0, workers=1))
    try:
        key = service_keys.read_keys(Path(state["keys_file"]))["primaryKey"]
        run_load_test(state["scoring_uri"], body, key, 200, 1)
        client_started, server_started = time.process_time(), process_tree_cpu_s(state["pid"])
        result = run_load_test(state["scoring_uri"], body, key, HTTP_REQUESTS, 8)
        client_ms = (time.process_time() - client_started) / HTTP_REQUESTS * 1000
        server_ms = (process_tree_cpu_s(state["pid"]) - server_started) / HTTP_REQUESTS * 1000
    finally:
        stop(services, "request-cpu")
    return {"server": round(server_ms, 3), "client": round(client_ms, 3), "requests": HTTP_REQUESTS,
            "failed": result.failed, "requests_per_s_c8": round(result.requests_per_s, 1)}


def wsgi_callers(model_dir: Path, body: bytes):
    """Return two functions that send one POST /score: through the service's WSGI app, and without the front."""
    folder = WORK_DIR / "request-cpu"
    folder.mkdir(parents=True, exist_ok=True)
    entry_script = folder / "score.py"
    entry_script.write_bytes((Path(service_keys.__file__).parent / "templates" / "score.py").read_bytes())
    keys = service_keys.write_keys(folder / service_keys.KEYS_FILE)
    env = service_env(ServiceSpec(name="request-cpu", model_dir=model_dir), folder, entry_script)
    os.environ.update(env)
    from local_scoring.wsgi import app

    base_environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/score", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": f"Bearer {keys['primaryKey']}",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }

    def call(wsgi_app) -> None:
        statuses = []
        response = wsgi_app(dict(base_environ, **{"wsgi.input": io.BytesIO(body)}),
                            lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(response)
        if hasattr(response, "close"):
            response.close()
        if not statuses[0].startswith("200"):
            raise SystemExit(f"the in-process request failed with HTTP {statuses[0]}")

    # app.app is the inference server's Flask app that the front wraps.
    return lambda: call(app), lambda: call(app.app)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=WORK_DIR / "request_cpu.json")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from local_scoring.entry import ScoringModel

    model_dir = build_model()
    record = one_record(model_dir)
    body = json.dumps({"data": [record]}).encode("utf-8")
    load_at_start = round(os.getloadavg()[0], 2)
    http = measure_http(model_dir, body)

    limits = threadpool_limits(1)  # one thread, as each service worker gets
    scoring = ScoringModel.load(model_dir)
    frame = scoring.to_frame([record])
    with_front, without_front = wsgi_callers(model_dir, body)
    calls = {
        "wsgi_in_process": with_front,
        "wsgi_without_front": without_front,
        "model_predict": lambda: scoring.model.predict(frame),
        "entry_to_frame": lambda: scoring.to_frame([record]),
    }
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(100):
            call()
    for _ in range(BATCHES):
        for name, call in calls.items():
            started = time.thread_time()
            for _ in range(BATCH_CALLS):
                call()
            timings[name].append((time.thread_time() - started) / BATCH_CALLS * 1000)
    limits.unregister()

    result = {
        "http_cpu_ms_per_request": http,
        "in_process_cpu_ms": {name: {"median": round(statistics.median(values), 3), "min": round(min(values), 3)}
                              for name, values in timings.items()},
        "load_average_at_start": load_at_start,
        "machine": machine_description(),
    }
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
