"""Latency and throughput of the scoring service against the bare server, MLflow and in-process scoring.

One run on this machine, the same model everywhere, one BLAS/OpenMP thread per worker process:

- ``service``: the local scoring service (front + AzureML inference server), authenticated,
  one gunicorn sync worker as in ACI;
- ``bare``: the same inference server app and entry script under gunicorn on a loopback port,
  without the front, one worker;
- ``mlflow``: ``mlflow models serve --env-manager local -w 1`` for the same fitted pipeline;
- ``service_2w`` and ``mlflow_2w``: the service and MLflow with two worker processes each
  (``ServiceSpec.workers``, ``mlflow models serve -w 2``), left out with ``--skip-two-workers``;
- ``in_process``: ``predict_proba`` (and ``predict``) on one prepared record, the floor.

The sync worker serves one request at a time, while MLflow's uvicorn worker runs each scoring
call in a thread and so overlaps requests in one process. The two-worker rows give each server
two processes, one per core on a 2-core machine.

Latency is measured with one request in flight (p50, p99); throughput with 8 in flight. Every
HTTP target gets the same client (``lab.loadtest``) and a one-record body. All servers run at
once and are measured in turn, ROUNDS times. Each figure is the median over the rounds, so a
change in the machine's load hits every target alike.

    LAB_DATA_DIR=/path/to/data python benchmarks/serving/compare.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK_DIR, build_model, machine_description, one_record, write_result  # noqa: E402

from lab.loadtest import percentile, run_load_test  # noqa: E402
from local_scoring.keys import read_keys  # noqa: E402
from local_scoring.process import (  # noqa: E402
    THREAD_ENV_VARS,
    ServiceSpec,
    free_port,
    service_env,
    start,
    stop,
)

ROUNDS = 7
WARMUP_REQUESTS = 200
LATENCY_REQUESTS = 200
THROUGHPUT_REQUESTS = 400
THROUGHPUT_CONCURRENCY = 8
IN_PROCESS_CALLS = 400
READY_TIMEOUT_S = 180


def measure_http(name: str, uri: str, body: bytes, key: str | None) -> dict:
    latency = run_load_test(uri, body, key, LATENCY_REQUESTS, 1)
    throughput = run_load_test(uri, body, key, THROUGHPUT_REQUESTS, THROUGHPUT_CONCURRENCY)
    result = {
        "p50_ms": latency.latency_ms["p50"],
        "p99_ms": latency.latency_ms["p99"],
        "requests_per_s_c8": throughput.requests_per_s,
        "failed": latency.failed + throughput.failed,
    }
    print(f"{name}: {result}", flush=True)
    return result


def median_of(rounds: list[dict]) -> dict:
    """Return the median of each figure over the rounds; ``failed`` is summed instead."""
    if isinstance(rounds[0].get("p50_ms"), (int, float)):
        merged = {name: round(statistics.median(r[name] for r in rounds), 3) for name in rounds[0] if name != "failed"}
        if "failed" in rounds[0]:
            merged["failed"] = sum(r["failed"] for r in rounds)
        return merged
    return {name: median_of([r[name] for r in rounds]) for name in rounds[0]}


def measure_in_process(model_dir: Path) -> dict:
    import joblib
    from threadpoolctl import threadpool_limits

    from local_scoring.entry import ScoringModel

    scoring = ScoringModel.load(model_dir)
    frame = scoring.to_frame([one_record(model_dir)])
    model = joblib.load(model_dir / "model.pkl")
    result = {}
    # One thread, as each server worker gets (ServiceSpec.threads_per_worker).
    limits = threadpool_limits(1)
    for method in ("predict_proba", "predict"):
        call = getattr(model, method)
        for _ in range(WARMUP_REQUESTS):
            call(frame)
        timings = []
        for _ in range(IN_PROCESS_CALLS):
            started = time.perf_counter()
            call(frame)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        result[method] = {
            "p50_ms": round(percentile(timings, 50), 3),
            "p99_ms": round(percentile(timings, 99), 3),
            "calls_per_s_one_thread": round(1000 / statistics.fmean(timings), 1),
        }
    limits.unregister()
    print(f"in_process: {result}", flush=True)
    return result


def wait_for(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode}; see its log in {WORK_DIR}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"{what} was not ready after {READY_TIMEOUT_S} s")


@contextlib.contextmanager
def running(command: list[str], env: dict, log_name: str, cwd: Path):
    """Run ``command`` in its own process group and end that group (and only it) afterwards."""
    with open(WORK_DIR / log_name, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def bare_server(model_dir: Path):
    """Yield the scoring URI of the bare inference server (no front) on a loopback port."""
    folder = WORK_DIR / "bare"
    folder.mkdir(parents=True, exist_ok=True)
    entry_script = folder / "score.py"
    shutil.copyfile(Path(__import__("local_scoring").__file__).parent / "templates" / "score.py", entry_script)
    port = free_port("127.0.0.1")
    env = service_env(ServiceSpec(name="bare", model_dir=model_dir, port=port), folder, entry_script)
    for name in ("LAB_KEYS_FILE", "LAB_REQUEST_LOG"):
        env.pop(name, None)
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
               "azureml_inference_server_http.server.create_app:create()"]
    with running(command, env, "bare.log", folder) as process:
        wait_for(f"http://127.0.0.1:{port}/", process, "the bare inference server")
        yield f"http://127.0.0.1:{port}/score"


def save_mlflow_model(model_dir: Path) -> Path:
    """Save the fitted pipeline of ``model_dir`` as an MLflow model folder and return the folder."""
    import joblib
    import mlflow.sklearn

    folder = WORK_DIR / "mlflow-model"
    if folder.exists():
        shutil.rmtree(folder)
    # cloudpickle as the model file itself is a pickle: MLflow's default (skops) refuses the
    # gradient-boosting tree types unless each is listed as trusted.
    mlflow.sklearn.save_model(joblib.load(model_dir / "model.pkl"), str(folder),
                              serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    return folder


@contextlib.contextmanager
def mlflow_server(folder: Path, workers: int):
    """Yield the invocations URI of ``mlflow models serve`` for the MLflow model in ``folder``."""
    port = free_port("127.0.0.1")
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_cli), "models", "serve", "-m", str(folder), "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"file://{WORK_DIR / 'mlruns'}")
    env.update({name: "1" for name in THREAD_ENV_VARS})  # the same one thread as the service's worker
    # MLflow starts uvicorn by name, so this environment's bin folder must be on PATH.
    env["PATH"] = f"{mlflow_cli.parent}{os.pathsep}{env.get('PATH', '')}"
    with running(command, env, f"mlflow-{workers}w.log", WORK_DIR) as process:
        wait_for(f"http://127.0.0.1:{port}/ping", process, "mlflow models serve")
        yield f"http://127.0.0.1:{port}/invocations"


@contextlib.contextmanager
def scoring_service(model_dir: Path, workers: int):
    """Yield the scoring URI and primary key of the local scoring service with ``workers`` workers."""
    services = WORK_DIR / "services"
    name = f"compare-{workers}w"
    state = start(services, ServiceSpec(name=name, model_dir=model_dir, port=0, workers=workers))
    try:
        yield state["scoring_uri"], read_keys(Path(state["keys_file"]))["primaryKey"]
    finally:
        stop(services, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=WORK_DIR / "compare.json")
    parser.add_argument("--skip-mlflow", action="store_true", help="Leave MLflow out (when it is not installed).")
    parser.add_argument("--skip-two-workers", action="store_true",
                        help="Measure only the one-worker servers (leave out service_2w and mlflow_2w).")
    args = parser.parse_args()

    load_at_start = [round(value, 2) for value in os.getloadavg()]
    model_dir = build_model()
    record = one_record(model_dir)
    body = json.dumps({"data": [record]}).encode("utf-8")
    mlflow_body = json.dumps({"dataframe_records": [record]}).encode("utf-8")
    with contextlib.ExitStack() as stack:
        service_uri, key = stack.enter_context(scoring_service(model_dir, 1))
        targets = {
            "service": (service_uri, body, key),
            "bare": (stack.enter_context(bare_server(model_dir)), body, "unused-by-the-bare-server"),
        }
        mlflow_folder = None if args.skip_mlflow else save_mlflow_model(model_dir)
        if mlflow_folder is not None:
            targets["mlflow"] = (stack.enter_context(mlflow_server(mlflow_folder, 1)), mlflow_body, None)
        if not args.skip_two_workers:
            service_uri_2w, key_2w = stack.enter_context(scoring_service(model_dir, 2))
            targets["service_2w"] = (service_uri_2w, body, key_2w)
            if mlflow_folder is not None:
                targets["mlflow_2w"] = (stack.enter_context(mlflow_server(mlflow_folder, 2)), mlflow_body, None)
        for uri, target_body, target_key in targets.values():
            run_load_test(uri, target_body, target_key, WARMUP_REQUESTS, 1)
        rounds: dict[str, list[dict]] = {name: [] for name in ["in_process", *targets]}
        round_loads = []
        for number in range(1, ROUNDS + 1):
            # The 1-minute load average includes this benchmark's own client and servers.
            round_loads.append(round(os.getloadavg()[0], 2))
            print(f"round {number} of {ROUNDS}, load average {round_loads[-1]}", flush=True)
            rounds["in_process"].append(measure_in_process(model_dir))
            # Each round starts with another target, so no target always follows the in-process run.
            names = list(targets)
            names = names[number % len(names):] + names[:number % len(names)]
            for name in names:
                uri, target_body, target_key = targets[name]
                rounds[name].append(measure_http(name, uri, target_body, target_key))
    results = {name: median_of(values) for name, values in rounds.items()}
    results["requests_per_s_c8_per_round"] = {
        name: [figures["requests_per_s_c8"] for figures in values] for name, values in rounds.items() if name in targets
    }
    results["rounds"] = ROUNDS
    results["latency_requests"] = LATENCY_REQUESTS
    results["throughput_requests"] = THROUGHPUT_REQUESTS

    service, bare = results["service"], results["bare"]
    ratios = {
        "service_p50_over_bare_p50": round(service["p50_ms"] / bare["p50_ms"], 3),
        "service_p99_over_bare_p99": round(service["p99_ms"] / bare["p99_ms"], 3),
        "service_rps_over_bare_rps": round(service["requests_per_s_c8"] / bare["requests_per_s_c8"], 3),
        "service_p50_over_in_process_predict_proba_p50": round(
            service["p50_ms"] / results["in_process"]["predict_proba"]["p50_ms"], 1),
    }
    if "mlflow" in results:
        mlflow_result = results["mlflow"]
        ratios["service_rps_over_mlflow_rps"] = round(service["requests_per_s_c8"] / mlflow_result["requests_per_s_c8"], 3)
        ratios["service_p50_over_mlflow_p50"] = round(service["p50_ms"] / mlflow_result["p50_ms"], 3)
    if "service_2w" in results:
        ratios["service_2w_rps_over_service_rps"] = round(
            results["service_2w"]["requests_per_s_c8"] / service["requests_per_s_c8"], 3)
    if "service_2w" in results and "mlflow_2w" in results:
        ratios["service_2w_rps_over_mlflow_2w_rps"] = round(
            results["service_2w"]["requests_per_s_c8"] / results["mlflow_2w"]["requests_per_s_c8"], 3)
    if "service_2w" in results and "mlflow" in results:
        ratios["service_2w_rps_over_mlflow_rps"] = round(
            results["service_2w"]["requests_per_s_c8"] / results["mlflow"]["requests_per_s_c8"], 3)
    results["ratios"] = ratios
    results["load_average_at_start"] = load_at_start
    results["load_average_per_round"] = round_loads
    results["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    results["machine"] = machine_description()
    write_result(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
