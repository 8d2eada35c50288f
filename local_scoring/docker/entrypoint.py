"""Start the scoring service in its container: keys, model checks, then gunicorn on 0.0.0.0.

The image sets the same environment variables as the process target (``AZUREML_MODEL_DIR``,
``WORKER_COUNT``, ``LAB_KEYS_FILE``, ...). On top of them this entry point reads:

- ``LAB_PRIMARY_KEY_SHA256`` and ``LAB_SECONDARY_KEY_SHA256``: the SHA-256 hex digests of the
  keys, which docker-compose.yml passes from the env file `lab` writes, so that `docker
  inspect` shows no key. ``LAB_PRIMARY_KEY`` and ``LAB_SECONDARY_KEY``: the keys themselves,
  for `docker run -e` (local_scoring/Dockerfile.automl). Either pair is written to
  ``LAB_KEYS_FILE`` (mode 0600) as digests, and all four variables are removed from the
  environment the server runs with. Without them, a keys file mounted at ``LAB_KEYS_FILE`` is
  used (``lab deploy --target docker`` mounts the service folder, so `lab keys regenerate`
  reaches the container).
- ``LAB_PORT``: the front's port inside the container (default 5001).
- ``LAB_PAYLOAD_STYLE``: ``v1`` or ``v2``, which of the image's entry scripts to run (score.py
  or score_v2.py in ``AML_APP_ROOT``); unset, ``AZUREML_ENTRY_SCRIPT`` is used as it is.
- ``LAB_SERVER_LOG``: a file that receives a copy of the server's output, beside the container log.
- ``LAB_SKIP_REQUIREMENTS_CHECK=1``: start even when the model's requirements.txt pins other
  versions than the image has.
- ``LAB_MODEL_FILES``: comma-separated files the model folder must contain (default
  ``model.pkl,schema.json,sample.json``; an Azure AutoML model has only ``model.pkl``).

Binding 0.0.0.0 is safe here because the container holds only the front: the inference server's
own Flask app is served by the same gunicorn workers behind the key check.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from lab.errors import ServiceError
from local_scoring import keys as service_keys

logger = logging.getLogger(__name__)

KEY_VARIABLES = {"primaryKey": "LAB_PRIMARY_KEY", "secondaryKey": "LAB_SECONDARY_KEY"}
DIGEST_VARIABLES = {"primaryKey": "LAB_PRIMARY_KEY_SHA256", "secondaryKey": "LAB_SECONDARY_KEY_SHA256"}
MIN_KEY_CHARS = 16
DEFAULT_PORT = 5001
MODEL_FILES = ("model.pkl", "schema.json", "sample.json")
ENTRY_SCRIPTS = {"v1": "score.py", "v2": "score_v2.py"}


def prepare_keys(env: dict[str, str]) -> Path:
    """Write the key digests from ``env`` into ``LAB_KEYS_FILE``, or check that a mounted keys file is readable.

    The key and digest variables are removed from ``env``. Raises ``ServiceError`` when no form
    gives two usable keys, or when both the keys and their digests are set.
    """
    keys_file = Path(env.get("LAB_KEYS_FILE", ""))
    if not env.get("LAB_KEYS_FILE"):
        raise ServiceError("LAB_KEYS_FILE is not set; the image sets it, so do not override it with an empty value")
    env_keys = {field: env.pop(variable, "").strip() for field, variable in KEY_VARIABLES.items()}
    env_digests = {field: env.pop(variable, "").strip() for field, variable in DIGEST_VARIABLES.items()}
    if any(env_keys.values()) and any(env_digests.values()):
        raise ServiceError(
            "set either LAB_PRIMARY_KEY_SHA256 and LAB_SECONDARY_KEY_SHA256 (docker compose) or "
            "LAB_PRIMARY_KEY and LAB_SECONDARY_KEY, not both"
        )
    if any(env_digests.values()):
        for field, value in env_digests.items():
            if not service_keys.is_digest(value):
                raise ServiceError(
                    f"{DIGEST_VARIABLES[field]} must be a SHA-256 digest of {service_keys.DIGEST_HEX_CHARS} hexadecimal "
                    f"characters, got {len(value)} characters; run `lab train` or `lab deploy` to rewrite .env"
                )
        service_keys.write_key_digests(keys_file, env_digests["primaryKey"], env_digests["secondaryKey"])
        logger.info("key digests from the environment written to %s", keys_file)
        return keys_file
    if any(env_keys.values()):
        for field, value in env_keys.items():
            variable = KEY_VARIABLES[field]
            if len(value) < MIN_KEY_CHARS:
                raise ServiceError(
                    f"{variable} has {len(value)} characters, fewer than {MIN_KEY_CHARS}; "
                    f"pass a random key of at least {MIN_KEY_CHARS} characters, such as the output of "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`"
                )
        service_keys.write_key_digests(keys_file, service_keys.key_digest(env_keys["primaryKey"]),
                                       service_keys.key_digest(env_keys["secondaryKey"]))
        logger.info("digests of the keys from the environment written to %s", keys_file)
        return keys_file
    try:
        service_keys.read_key_digests(keys_file)
    except FileNotFoundError:
        raise ServiceError(
            f"no keys: set LAB_PRIMARY_KEY_SHA256 and LAB_SECONDARY_KEY_SHA256 (`lab train` writes them into .env), "
            f"or LAB_PRIMARY_KEY and LAB_SECONDARY_KEY, or mount a keys file at {keys_file}"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise ServiceError(
            f"keys file {keys_file} cannot be read ({exc.__class__.__name__}); it must be JSON with "
            "primaryKey and secondaryKey (or their digests primaryKeySha256 and secondaryKeySha256), "
            "readable by the container's user"
        ) from None
    logger.info("using the mounted keys file %s", keys_file)
    return keys_file


def check_model_dir(model_dir: Path, required: tuple[str, ...] = MODEL_FILES) -> None:
    """Raise ``ServiceError`` unless the mounted model folder has the files the entry script reads."""
    missing = [name for name in required if not (model_dir / name).is_file()]
    if missing:
        raise ServiceError(
            f"model folder {model_dir} is missing {', '.join(missing)}; mount a registered model version there "
            "(LAB_MODEL_DIR in .env, written by `lab train`)"
        )


def requirement_mismatches(model_dir: Path) -> list[str]:
    """Compare the model's ``requirements.txt`` pins with the packages installed in the image.

    Returns one ``name==expected (image: installed)`` entry per mismatch. Lines that are not a
    plain ``name==version`` pin are ignored.
    """
    path = model_dir / "requirements.txt"
    if not path.is_file():
        return []
    mismatches = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        name, separator, expected = line.partition("==")
        if not separator or not name.strip() or not expected.strip():
            continue
        name, expected = name.strip(), expected.strip()
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != expected:
            mismatches.append(f"{name}=={expected} (image: {installed})")
    return mismatches


def check_requirements(model_dir: Path, env: dict[str, str]) -> None:
    mismatches = requirement_mismatches(model_dir)
    if not mismatches:
        return
    summary = ", ".join(mismatches[:3]) + (f" and {len(mismatches) - 3} more" if len(mismatches) > 3 else "")
    if env.get("LAB_SKIP_REQUIREMENTS_CHECK") == "1":
        logger.warning("model %s was trained with other package versions: %s", model_dir, summary)
        return
    raise ServiceError(
        f"model {model_dir} needs {summary}; rebuild the image with pins from the training environment "
        "(local_scoring/docker/lock_requirements.py) or set LAB_SKIP_REQUIREMENTS_CHECK=1"
    )


def choose_entry_script(env: dict[str, str]) -> None:
    """Point ``AZUREML_ENTRY_SCRIPT`` at the image's script for ``LAB_PAYLOAD_STYLE``, when it is set."""
    style = env.get("LAB_PAYLOAD_STYLE", "").strip()
    if not style:
        return
    if style not in ENTRY_SCRIPTS:
        raise ServiceError(f"LAB_PAYLOAD_STYLE must be v1 or v2, got {style[:20]!r}")
    env["AZUREML_ENTRY_SCRIPT"] = str(Path(env.get("AML_APP_ROOT", ".")) / ENTRY_SCRIPTS[style])


def gunicorn_command(env: dict[str, str]) -> list[str]:
    """Return the gunicorn command of the process target, bound to every interface of the container."""
    port = env.get("LAB_PORT", str(DEFAULT_PORT))
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"0.0.0.0:{port}",
        "--workers", env.get("WORKER_COUNT", "1"),
        "--timeout", env.get("WORKER_TIMEOUT", "300"),
        "--graceful-timeout", "10",
        "--error-logfile", "-",
        "local_scoring.wsgi:app",
    ]


def run_with_log_copy(command: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run ``command``, copying its output to stdout and to ``log_path``; return its exit code.

    SIGTERM, SIGINT and SIGHUP are passed on to the child, so `docker stop` stops gunicorn
    gracefully. A failing log file stops the copy but not the service.
    """
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda received, frame: child.send_signal(received))
    log = open(log_path, "ab", buffering=0)
    try:
        for line in iter(child.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            if log is None:
                continue
            try:
                log.write(line)
            except OSError as exc:
                logger.warning("cannot write %s (%s); the output goes to the container log only", log_path, exc)
                log.close()
                log = None
    finally:
        if log is not None:
            log.close()
    return child.wait()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = dict(os.environ)
    try:
        prepare_keys(env)
        choose_entry_script(env)
        model_dir = Path(env.get("AZUREML_MODEL_DIR", ""))
        required = tuple(name.strip() for name in env.get("LAB_MODEL_FILES", ",".join(MODEL_FILES)).split(",") if name.strip())
        check_model_dir(model_dir, required)
        check_requirements(model_dir, env)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)

    command = gunicorn_command(env)
    logger.info("starting the scoring service for %s on port %s", model_dir, env.get("LAB_PORT", DEFAULT_PORT))
    server_log = env.get("LAB_SERVER_LOG")
    if server_log:
        sys.exit(run_with_log_copy(command, env, Path(server_log)))
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
