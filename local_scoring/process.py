"""Start and stop the scoring service as local processes.

One gunicorn master serves ``local_scoring.wsgi:app`` (the inference server behind the front) on
the front's address only, 127.0.0.1 by default. The service folder
(``<workspace>/services/<name>/``) contains:

- ``state.json``: pid, address, scoring and swagger URIs, model reference, settings;
- ``keys.json``: the primary and secondary keys (mode 0600);
- ``score.py``: the generated entry script;
- ``requests.jsonl``: the request log, one JSON record per request;
- ``server.log``: the inference server's and gunicorn's own output.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from lab.errors import ServiceError
from lab.workspace import atomic_write_json, read_json, utc_now
from local_scoring import keys as service_keys
from local_scoring.entry import DOUBLE_ENCODED_ENV, PAYLOAD_STYLES

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOG_FILE = "server.log"
REQUEST_LOG = "requests.jsonl"
ENTRY_SCRIPT = "score.py"
DEFAULT_SERVICE_NAME = "bankmarketing-service"
DEFAULT_PORT = 5001
STOP_GRACE_S = 15.0
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_INTERVAL_S = 0.25


@dataclass
class ServiceSpec:
    """What to serve and how; the fields map to the inference server's environment variables."""

    name: str
    model_dir: Path
    model_ref: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 picks a free port
    workers: int = 1  # WORKER_COUNT
    worker_timeout_s: int = 300  # WORKER_TIMEOUT, gunicorn's per-request limit
    scoring_timeout_ms: int = 60_000  # SCORING_TIMEOUT_MS, the inference server's run() limit
    max_body_bytes: int = 100 * 1024 * 1024
    max_rows: int = 10_000
    cors_origins: str | None = None  # AML_CORS_ORIGINS, comma-separated
    entry_script: Path | None = None  # None: the generated entry script for lab models
    payload_style: str = "v1"  # "v1": {"data": [...]} -> {"result": [...]}; "v2": Inputs/GlobalParameters -> Results
    # OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS of each worker. One thread per
    # worker is fastest for small requests: measured on 2 cores, OpenMP's default of one thread
    # per core made a one-record predict about 4x slower once other processes used the cores.
    threads_per_worker: int = 1
    double_encoded: bool = False  # LAB_DOUBLE_ENCODED: v1 responses as a JSON string, as Azure's v1 scripts send
    ready_timeout_s: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)


def service_dir(services_root: Path, name: str) -> Path:
    return services_root / name


def read_state(folder: Path) -> dict | None:
    path = folder / STATE_FILE
    return read_json(path) if path.is_file() else None


def is_running(state: dict | None) -> bool:
    if not state or not state.get("pid"):
        return False
    try:
        os.kill(int(state["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_model_dir(model_dir: Path) -> None:
    """Raise ``ServiceError`` unless ``model_dir`` loads and its model scores its own sample.

    This runs the same ``ScoringModel.load`` as the entry script, in the deploying process, so
    that a broken model fails the deployment with a clear message before any server starts.
    """
    from local_scoring.entry import ModelLoadError, ScoringModel

    model_file = model_dir / "model.pkl"
    if not model_file.is_file():
        raise ServiceError(f"model file {model_file} not found; register a model with `lab train` and deploy it")
    for name in ("schema.json", "sample.json"):
        if not (model_dir / name).is_file():
            raise ServiceError(f"{model_dir / name} not found; the model folder is incomplete, train it again")
    try:
        ScoringModel.load(model_dir)
    except ModelLoadError as exc:
        raise ServiceError(
            f"model file {model_file} cannot be loaded or cannot score: {exc}; "
            "it is corrupt or was saved with other package versions: train it again"
        ) from None


def entry_template(spec: ServiceSpec) -> Path:
    """Return the entry script to copy: ``spec.entry_script`` or the template of the payload style."""
    if spec.entry_script is not None:
        return spec.entry_script
    if spec.payload_style not in PAYLOAD_STYLES:
        raise ServiceError(f"unknown payload style {spec.payload_style!r}; use 'v1' or 'v2'")
    if spec.double_encoded and spec.payload_style != "v1":
        raise ServiceError("double-encoded responses exist only in the v1 payload style; drop the option or use v1")
    name = "score.py" if spec.payload_style == "v1" else "score_v2.py"
    return Path(__file__).parent / "templates" / name


def start(services_root: Path, spec: ServiceSpec) -> dict:
    """Start the service and wait until it answers a scoring request; return its state.

    A service of the same name that is running is stopped first; its keys are kept. Raises
    ``ServiceError`` with the cause (and the tail of the server log) when the model does not
    load or the server does not become ready within ``spec.ready_timeout_s``.
    """
    template = entry_template(spec)
    if spec.scoring_timeout_ms >= spec.worker_timeout_s * 1000:
        logger.warning(
            "scoring timeout %d ms is not below the worker timeout of %d s: a slow request ends its worker, "
            "which gunicorn then restarts, instead of getting the inference server's 'Scoring timeout' answer",
            spec.scoring_timeout_ms, spec.worker_timeout_s,
        )
    check_model_dir(spec.model_dir)
    folder = service_dir(services_root, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    if is_running(read_state(folder)):
        logger.info("service %s is running; stopping it before the new deployment", spec.name)
        stop(services_root, spec.name)

    port = spec.port or free_port(spec.host)
    ensure_port_free(spec.host, port)
    keys_file = folder / service_keys.KEYS_FILE
    if keys_file.is_file():
        keys = service_keys.read_keys(keys_file)
    else:
        keys = service_keys.write_keys(keys_file)

    entry_script = folder / ENTRY_SCRIPT
    shutil.copyfile(template, entry_script)

    env = service_env(spec, folder, entry_script)
    command = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{spec.host}:{port}",
        "--workers", str(spec.workers),
        "--timeout", str(spec.worker_timeout_s),
        "--graceful-timeout", "10",
        "--error-logfile", "-",
        "local_scoring.wsgi:app",
    ]
    log_handle = open(folder / LOG_FILE, "ab")
    try:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log_handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    finally:
        log_handle.close()

    state = new_state(spec, folder, port, target="process", pid=process.pid)
    atomic_write_json(folder / STATE_FILE, state)
    try:
        wait_until_ready(process, state, keys["primaryKey"], spec)
    except BaseException:
        stop(services_root, spec.name)
        raise
    logger.info("service %s ready at %s (pid %d)", spec.name, state["scoring_uri"], process.pid)
    return state


def new_state(spec: ServiceSpec, folder: Path, port: int, target: str, **fields) -> dict:
    """Return the state.json contents of a service just started; ``fields`` adds target-specific ones."""
    base = f"http://{'127.0.0.1' if spec.host in ('0.0.0.0', '') else spec.host}:{port}"
    return {
        "name": spec.name,
        "target": target,
        **fields,
        "host": spec.host,
        "port": port,
        "scoring_uri": f"{base}/score",
        "swagger_uri": f"{base}/swagger.json",
        "model": spec.model_ref,
        "model_dir": str(spec.model_dir),
        "log": str(folder / LOG_FILE),
        "request_log": str(folder / REQUEST_LOG),
        "keys_file": str(folder / service_keys.KEYS_FILE),
        "started_at": utc_now(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
    }


def service_env(spec: ServiceSpec, folder: Path, entry_script: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AML_APP_ROOT": str(folder),
        "AZUREML_ENTRY_SCRIPT": str(entry_script),
        "AZUREML_MODEL_DIR": str(spec.model_dir),
        "SERVICE_NAME": spec.name,
        "WORKER_COUNT": str(spec.workers),
        "WORKER_TIMEOUT": str(spec.worker_timeout_s),
        "SCORING_TIMEOUT_MS": str(spec.scoring_timeout_ms),
        "LAB_KEYS_FILE": str(folder / service_keys.KEYS_FILE),
        "LAB_REQUEST_LOG": str(folder / REQUEST_LOG),
        "LAB_MAX_BODY_BYTES": str(spec.max_body_bytes),
        "LAB_MAX_ROWS": str(spec.max_rows),
        DOUBLE_ENCODED_ENV: "1" if spec.double_encoded else "0",
        "PYTHONUNBUFFERED": "1",
    })
    for name in THREAD_ENV_VARS:
        env[name] = str(spec.threads_per_worker)
    if spec.cors_origins:
        env["AML_CORS_ORIGINS"] = spec.cors_origins
    env.update(spec.extra_env)
    return env


def wait_until_ready(process: subprocess.Popen, state: dict, key: str, spec: ServiceSpec) -> None:
    """Poll until ``GET /`` is healthy and the model's own sample scores with HTTP 200."""
    deadline = time.monotonic() + spec.ready_timeout_s
    base = state["scoring_uri"].rsplit("/", 1)[0]
    records = json.loads((Path(spec.model_dir) / "sample.json").read_text(encoding="utf-8"))["data"][:1]
    sample = {"data": records} if spec.payload_style == "v1" else {"Inputs": {"data": records}}
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServiceError(
                f"scoring service {spec.name} exited with code {code} before it was ready; "
                f"the model or entry script failed to load: {log_tail(state)}"
            )
        with contextlib.suppress(requests.RequestException):
            health = requests.get(f"{base}/", timeout=2)
            if health.status_code == 200:
                answer = requests.post(
                    state["scoring_uri"], json=sample, timeout=30,
                    headers={"Authorization": f"Bearer {key}"},
                )
                if answer.status_code == 200:
                    return
                raise ServiceError(
                    f"scoring service {spec.name} is up but its model failed to score the model's own sample "
                    f"(HTTP {answer.status_code}: {answer.text[:200]}); see {state_log_path(state)}"
                )
        time.sleep(POLL_INTERVAL_S)
    raise ServiceError(
        f"scoring service {spec.name} was not ready after {spec.ready_timeout_s:.0f} s; "
        f"see {state_log_path(state)}"
    )


def state_log_path(state: dict) -> Path:
    return Path(state["log"])


def log_tail(state: dict, lines: int = 3) -> str:
    path = Path(state["log"]) if state.get("log") else None
    if path is None or not path.is_file():
        return "no server log"
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    interesting = [line for line in text if "Error" in line or "error" in line or "Exception" in line]
    return " | ".join((interesting or text)[-lines:])[:600]


def stop(services_root: Path, name: str) -> bool:
    """Stop the service; return False when it was not running."""
    folder = service_dir(services_root, name)
    state = read_state(folder)
    if not is_running(state):
        if state is not None:
            state["pid"] = None
            state["stopped_at"] = utc_now()
            atomic_write_json(folder / STATE_FILE, state)
        return False
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline and is_running(state):
        _reap(pid)
        time.sleep(0.1)
    if is_running(state):
        logger.warning("service %s (pid %d) did not stop within %.0f s; killing it", name, pid, STOP_GRACE_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    state["pid"] = None
    state["stopped_at"] = utc_now()
    atomic_write_json(folder / STATE_FILE, state)
    logger.info("service %s stopped", name)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the service is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as gunicorn sets it, so that connections of a stopped service still in
        # TIME_WAIT do not count as "in use"; a listening socket still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror:
            raise ServiceError(f"invalid host {host!r}: no such address; use 127.0.0.1, 0.0.0.0 or a local address") from None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ServiceError(
                    f"cannot bind {host}:{port} ({exc.strerror}); use 127.0.0.1, 0.0.0.0 or an address of this machine"
                ) from None
            raise ServiceError(
                f"port {port} on {host} is in use; stop what listens there (`lab deploy --stop`) or pass --port"
            ) from None
