"""Run the scoring service as a container through the Docker engine, and feed docker compose.

``start``/``stop`` are the docker counterparts of ``local_scoring.process.start``/``stop`` and
write the same ``state.json`` fields, with ``target="docker"``, ``pid=None`` and the container in
``container_id``. The container runs the project's image (``local_scoring/Dockerfile``, the one
docker-compose.yml builds) with:

- the model version folder mounted read-only at ``/var/lib/lab/model``;
- the service folder mounted at ``/var/lib/lab/service``, so the front reads ``keys.json`` there
  (`lab keys regenerate` reaches the running container) and writes ``requests.jsonl``, and the
  entry point copies the server's output into ``server.log``: `lab logs` works unchanged;
- the front's port published on the requested host address only (127.0.0.1 by default).

``write_compose_env`` writes the ``.env`` file that docker-compose.yml reads: which model
version to serve, the two keys for clients, and their SHA-256 digests for the container.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

from lab.errors import LabError, ServiceError
from lab.workspace import Workspace, atomic_write_json, atomic_write_text, utc_now
from local_scoring import keys as service_keys
from local_scoring import process
from local_scoring.process import LOG_FILE, REQUEST_LOG, STATE_FILE, ServiceSpec

logger = logging.getLogger(__name__)

IMAGE_ENV = "LAB_SCORING_IMAGE"
DEFAULT_IMAGE = "lab-scoring:latest"
BASE_IMAGE_ENV = "LAB_BASE_IMAGE"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "lab-python-base:bookworm"
WHEELHOUSE = "local_scoring/docker/wheelhouse"
OFFLINE_BUILD_ENV = "LAB_OFFLINE_BUILD"
CONTAINER_PORT = 5001
IMAGE_USER = "10001:10001"  # the Dockerfile's non-root user
MODEL_MOUNT = "/var/lib/lab/model"
SERVICE_MOUNT = "/var/lib/lab/service"
RUN_DIR = "/var/lib/lab/run"  # XDG_RUNTIME_DIR in the image: gunicorn's control socket
CONTAINER_PREFIX = "lab-"
LABEL_SERVICE = "lab.service"
LABEL_SOURCE_DIGEST = "lab.source-digest"
# The files the Dockerfile copies into the image. Their digest identifies a stale image.
IMAGE_SOURCES = ("pyproject.toml", "README.md", "lab", "local_scoring", "cloud")
STOP_GRACE_S = 15

COMPOSE_FILE = "docker-compose.yml"
COMPOSE_ENV_FILE = ".env"
COMPOSE_ENV_HEADER = "# Written by lab for docker-compose.yml"
# Marks this project's compose file, so that `lab` never writes .env beside someone else's.
COMPOSE_MARKER = "local_scoring/Dockerfile"


# -- the engine ------------------------------------------------------------------------------


def engine_client():
    """Return a ``docker.DockerClient`` whose engine has responded to a ping.

    Raises ``ServiceError`` when the docker package is missing or no engine responds.
    """
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise ServiceError(
            "the docker target needs the docker Python package: pip install 'docker>=7.1,<8', "
            "or deploy with --target process"
        ) from None
    address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except DockerException as exc:
        raise ServiceError(
            f"no Docker engine responds at {address} ({_first_line(exc)}); start it, or deploy with --target process"
        ) from None
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__


def project_root() -> Path | None:
    """Return the source checkout this package runs from, or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "local_scoring" / "Dockerfile").is_file():
        return root
    return None


def image_source_files(root: Path) -> list[Path]:
    """Return the project files the image is built from, without caches and downloaded wheels."""
    files = []
    for name in IMAGE_SOURCES:
        top = root / name
        if top.is_file():
            candidates = [top]
        elif top.is_dir():
            candidates = sorted(top.rglob("*"))
        else:
            candidates = []
        for path in candidates:
            relative = path.relative_to(root).as_posix()
            if path.is_file() and "__pycache__" not in relative and not relative.startswith(WHEELHOUSE + "/"):
                files.append(path)
    return files


def source_digest(root: Path) -> str:
    """Return the sha256 of the project files the image is built from (paths and contents)."""
    digest = hashlib.sha256()
    for path in image_source_files(root):
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def write_build_context(root: Path, handle) -> None:
    """Write the image's build context as a tar archive: the sources and the wheelhouse only.

    Building from the repository folder itself would also send the workspace, git history and
    benchmark output to the engine. The GNU format is used because the docker CLI does not
    recognize a piped archive that starts with a PAX header.
    """
    with tarfile.open(fileobj=handle, mode="w|", format=tarfile.GNU_FORMAT) as archive:
        for path in image_source_files(root):
            archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
        for path in sorted((root / WHEELHOUSE).iterdir()) if (root / WHEELHOUSE).is_dir() else []:
            archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)


def default_build_args(client, root: Path) -> dict[str, str]:
    """Return BASE_IMAGE and OFFLINE from the environment, or what this machine can build with.

    Without ``LAB_BASE_IMAGE``, python:3.11-slim is used when the engine has it or no local
    base exists, else lab-python-base:bookworm (build-base-image.sh makes it). Without
    ``LAB_OFFLINE_BUILD``, the build is offline when the wheelhouse has wheels.
    """
    from docker.errors import ImageNotFound

    base = os.environ.get(BASE_IMAGE_ENV)
    if not base:
        base = DEFAULT_BASE_IMAGE
        for candidate in (DEFAULT_BASE_IMAGE, LOCAL_BASE_IMAGE):
            try:
                client.images.get(candidate)
            except ImageNotFound:
                continue
            base = candidate
            break
    offline = os.environ.get(OFFLINE_BUILD_ENV)
    if offline is None:
        offline = "1" if any((root / WHEELHOUSE).glob("*.whl")) else "0"
    return {"BASE_IMAGE": base, "OFFLINE": offline}


def ensure_image(client, image: str) -> None:
    """Build ``image`` from the project's Dockerfile unless the engine has it for the current source.

    In a source checkout, the image is rebuilt when its ``lab.source-digest`` label differs from
    the digest of the checkout's files, or when it has no such label (as after
    `docker-compose build`). The layer cache limits that rebuild to the project's own layers. Without a checkout, an existing image is used
    as it is. The build arguments come from ``LAB_BASE_IMAGE`` and ``LAB_OFFLINE_BUILD``, as in
    docker-compose.yml.
    """
    from docker.errors import BuildError, ImageNotFound

    root = project_root()
    try:
        existing = client.images.get(image)
    except ImageNotFound:
        existing = None
    if root is None:
        if existing is None:
            raise ServiceError(
                f"image {image} not found and no source checkout to build it from; "
                "build it in a clone with `docker-compose build scoring`"
            )
        return
    digest = source_digest(root)
    if existing is not None and (existing.labels or {}).get(LABEL_SOURCE_DIGEST) == digest:
        return
    build_args = default_build_args(client, root)
    logger.info("building image %s from %s (base %s, %s); this takes minutes the first time",
                image, root, build_args["BASE_IMAGE"], "stale" if existing is not None else "missing")
    try:
        with tempfile.TemporaryFile() as context:
            write_build_context(root, context)
            context.seek(0)
            client.images.build(
                fileobj=context, custom_context=True, dockerfile="local_scoring/Dockerfile", tag=image,
                buildargs={**build_args, "SOURCE_DIGEST": digest}, rm=True,
            )
    except BuildError as exc:
        output = [str(entry.get("stream", entry.get("error", ""))).strip() for entry in exc.build_log]
        tail = " | ".join(line for line in output if line)[-400:]
        raise ServiceError(f"building image {image} failed: {exc.msg}; last output: {tail}") from None


# -- start and stop --------------------------------------------------------------------------


def container_name(service_name: str) -> str:
    return CONTAINER_PREFIX + service_name


def container_env(spec: ServiceSpec, folder: Path, entry_script: Path) -> dict[str, str]:
    """Return the process target's service variables, with paths moved to the container's mounts.

    Only the variables that ``process.service_env`` sets are passed, never the rest of this
    process's environment.
    """
    env = process.service_env(spec, folder, entry_script)
    own = {name: value for name, value in env.items() if os.environ.get(name) != value}
    host_paths = {str(folder): SERVICE_MOUNT, str(spec.model_dir): MODEL_MOUNT}
    for name, value in own.items():
        for host_path, mount in host_paths.items():
            if value == host_path or value.startswith(host_path + os.sep):
                own[name] = mount + value[len(host_path):]
    own["LAB_SERVER_LOG"] = f"{SERVICE_MOUNT}/{LOG_FILE}"
    own["LAB_PORT"] = str(CONTAINER_PORT)
    return own


def _container_user(folder: Path, files: list[Path]) -> str:
    """Return the user the container runs as, with write access to the service folder.

    A non-root caller's own uid:gid is used. For root the image's user is used instead, because
    the service must not run as root, and the service folder and its files are given to that user.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return f"{uid}:{gid}"
    image_uid, image_gid = (int(part) for part in IMAGE_USER.split(":"))
    # NOTE: on the host, these files now belong to uid 10001; a local user with that uid could
    # read the keys. `lab keys regenerate` run as root replaces keys.json with a root-owned file
    # of mode 0600, which the container cannot read until the next `lab deploy --target docker`.
    for path in [folder, *files]:
        if path.exists():
            os.chown(path, image_uid, image_gid)
    return IMAGE_USER


def check_readable_by_others(model_dir: Path) -> None:
    """Raise ``ServiceError`` unless the container's user, not the folder's owner, can read the model."""
    unreadable = [model_dir] if stat.S_IMODE(model_dir.stat().st_mode) & 0o005 != 0o005 else []
    unreadable += [
        path for path in sorted(model_dir.iterdir())
        if path.is_file() and path.name != "manifest.json" and not stat.S_IMODE(path.stat().st_mode) & 0o004
    ]
    if unreadable:
        raise ServiceError(
            f"{unreadable[0]} is not readable by the container's user (uid {IMAGE_USER.split(':')[0]}); "
            f"run `chmod -R o+rX {model_dir}`, or run lab as a non-root user"
        )


def start(services_root: Path, spec: ServiceSpec) -> dict:
    """Start the service in a container and wait until it scores the model's sample; return its state.

    A service of the same name that is running (as a container or as processes) is stopped
    first; its keys are kept. Raises ``ServiceError`` when no engine responds, the image cannot
    be built, or the service is not ready within ``spec.ready_timeout_s``.
    """
    client = engine_client()
    folder = process.service_dir(services_root, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    process.check_model_dir(spec.model_dir)
    previous = process.read_state(folder)
    if previous and previous.get("target") == "docker":
        stop(services_root, spec.name)
    elif process.is_running(previous):
        logger.info("service %s is running as processes; stopping it before the new deployment", spec.name)
        process.stop(services_root, spec.name)

    port = spec.port or process.free_port(spec.host)
    process.ensure_port_free(spec.host, port)
    keys_file = folder / service_keys.KEYS_FILE
    keys = service_keys.read_keys(keys_file) if keys_file.is_file() else service_keys.write_keys(keys_file)
    entry_script = folder / process.ENTRY_SCRIPT
    shutil.copyfile(process.entry_template(spec), entry_script)
    for name in (LOG_FILE, REQUEST_LOG):
        (folder / name).touch()

    if os.getuid() == 0:
        check_readable_by_others(Path(spec.model_dir))
    image = os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)
    ensure_image(client, image)
    user = _container_user(folder, [keys_file, entry_script, folder / LOG_FILE, folder / REQUEST_LOG])
    _remove_stale_container(client, container_name(spec.name))
    container = _run_container(client, image, spec, folder, entry_script, port, user)

    state = process.new_state(spec, folder, port, target="docker", pid=None, container_id=container.id, image=image)
    atomic_write_json(folder / STATE_FILE, state)
    try:
        process.wait_until_ready(_ContainerProcess(container, folder / LOG_FILE), state, keys["primaryKey"], spec)
    except BaseException:
        stop(services_root, spec.name)
        raise
    logger.info("service %s ready at %s (container %s)", spec.name, state["scoring_uri"], container.short_id)
    return state


def _run_container(client, image: str, spec: ServiceSpec, folder: Path, entry_script: Path, port: int, user: str):
    from docker.errors import APIError

    try:
        return client.containers.run(
            image,
            detach=True,
            name=container_name(spec.name),
            environment=container_env(spec, folder, entry_script),
            ports={f"{CONTAINER_PORT}/tcp": (spec.host, port)},
            volumes={
                str(spec.model_dir): {"bind": MODEL_MOUNT, "mode": "ro"},
                str(folder): {"bind": SERVICE_MOUNT, "mode": "rw"},
            },
            tmpfs={"/tmp": "", RUN_DIR: f"uid={user.split(':')[0]},gid={user.split(':')[1]},mode=0700"},
            read_only=True,
            user=user,
            labels={LABEL_SERVICE: spec.name, "lab.model": spec.model_ref},
        )
    except APIError as exc:
        raise ServiceError(f"the engine rejected container {container_name(spec.name)}: {_first_line(exc)}") from None


def _remove_stale_container(client, name: str) -> None:
    """Remove a container of this name left over from a deployment that was not stopped."""
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        stale = client.containers.get(name)
        logger.info("removing the leftover container %s (%s)", name, stale.status)
        stale.remove(force=True)


class _ContainerProcess:
    """The ``poll()`` of ``subprocess.Popen`` for a container, as ``process.wait_until_ready`` uses it."""

    def __init__(self, container, log_path: Path):
        self.container = container
        self.log_path = log_path

    def poll(self) -> int | None:
        self.container.reload()
        if self.container.status not in ("exited", "dead"):
            return None
        # The entry point's own errors come before it copies output into server.log: keep the
        # container's output there too, so the caller's message can quote it.
        output = self.container.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"--- output of container {self.container.short_id} ---\n{output}")
        return int(self.container.attrs.get("State", {}).get("ExitCode", -1))


def is_running(state: dict | None) -> bool:
    """Return True when the state's container exists and runs; False also when no engine responds."""
    if not state or not state.get("container_id"):
        return False
    try:
        client = engine_client()
    except ServiceError:
        return False
    from docker.errors import NotFound

    try:
        return client.containers.get(state["container_id"]).status == "running"
    except NotFound:
        return False


def stop(services_root: Path, name: str) -> bool:
    """Stop and remove the service's container; return False when it was not running."""
    from docker.errors import NotFound

    folder = process.service_dir(services_root, name)
    state = process.read_state(folder)
    if state is None:
        return False
    client = engine_client()
    container_id = state.get("container_id")
    was_running = False
    if container_id:
        try:
            container = client.containers.get(container_id)
        except NotFound:
            logger.info("container %s of service %s no longer exists", container_id[:12], name)
        else:
            was_running = container.status == "running"
            container.stop(timeout=STOP_GRACE_S)
            container.remove()
            logger.info("service %s stopped (container %s removed)", name, container.short_id)
    state["pid"] = None
    state["container_id"] = None
    state["stopped_at"] = utc_now()
    atomic_write_json(folder / STATE_FILE, state)
    return was_running


# -- docker compose --------------------------------------------------------------------------


def find_compose_dir(workspace: Workspace) -> Path | None:
    """Return the folder with this project's docker-compose.yml when it is the workspace's parent.

    Only the workspace's own parent counts (``./.lab`` in the repository by default): a run on
    another workspace, such as a test's, must not repoint the repository's compose settings.
    """
    for candidate in (workspace.root.parent,):
        compose_file = candidate / COMPOSE_FILE
        if compose_file.is_file() and COMPOSE_MARKER in compose_file.read_text(encoding="utf-8", errors="replace"):
            return candidate
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``NAME=value`` lines; comments and blank lines are skipped."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values


def write_compose_env(
    workspace: Workspace, model_ref: str | None = None, compose_dir: Path | None = None,
    service_name: str = process.DEFAULT_SERVICE_NAME,
) -> Path:
    """Write ``.env`` beside docker-compose.yml so that `docker compose up` serves ``model_ref``.

    ``model_ref`` is ``name:version`` or ``name``, or None for the newest registered model. The
    file sets ``LAB_MODEL_DIR`` (the one setting that chooses the model), ``LAB_MODEL`` (for
    reading only), the two keys and their SHA-256 digests. docker-compose.yml passes only the
    digests into the container, so `docker inspect` shows no key. Keys already in the file are
    kept, so that clients keep working after retraining. Without them, the keys of the
    workspace's service ``service_name`` are used, or new ones. The digests are always computed
    from the keys written, so a key edited by hand gets its digest at the next call. Other
    lines of the file are kept. The file gets mode 0600.

    Raises ``ServiceError`` when no compose file is found, or when ``.env`` exists and was not
    written by lab (it is never overwritten then).
    """
    asset = workspace.get("models", model_ref)
    compose_dir = compose_dir or find_compose_dir(workspace)
    if compose_dir is None:
        raise ServiceError(
            f"no {COMPOSE_FILE} of this project in {workspace.root.parent}, the workspace's parent folder; "
            "use the workspace .lab in the repository's root folder (run lab from there)"
        )
    env_path = compose_dir / COMPOSE_ENV_FILE
    lines: list[str] = []
    current: dict[str, str] = {}
    if env_path.is_file():
        text = env_path.read_text(encoding="utf-8")
        if not text.startswith(COMPOSE_ENV_HEADER):
            raise ServiceError(
                f"{env_path} exists and was not written by lab; move it away, or add the setting "
                f"LAB_MODEL_DIR={_compose_path(asset.path, compose_dir)} and the keys yourself"
            )
        lines = text.splitlines()[1:]
        current = read_env_file(env_path)

    keys = {"LAB_PRIMARY_KEY": current.get("LAB_PRIMARY_KEY", ""), "LAB_SECONDARY_KEY": current.get("LAB_SECONDARY_KEY", "")}
    if not all(keys.values()):
        service_keys_file = workspace.services_dir / service_name / service_keys.KEYS_FILE
        stored = service_keys.read_keys(service_keys_file) if service_keys_file.is_file() else {}
        keys = {
            "LAB_PRIMARY_KEY": stored.get("primaryKey") or service_keys.new_key(),
            "LAB_SECONDARY_KEY": stored.get("secondaryKey") or service_keys.new_key(),
        }
    digests = {f"{name}_SHA256": service_keys.key_digest(value) for name, value in keys.items()}
    managed = {"LAB_MODEL": asset.ref, "LAB_MODEL_DIR": _compose_path(asset.path, compose_dir), **keys, **digests}

    other_lines = [line for line in lines if _variable_name(line) not in managed]
    body = [COMPOSE_ENV_HEADER + " (mode 0600, ignored by git). LAB_MODEL_DIR chooses the model."]
    body += [line for line in other_lines if line.strip()]
    body += [f"{name}={value}" for name, value in managed.items()]
    atomic_write_text(env_path, "\n".join(body) + "\n", mode=0o600)
    logger.info("wrote %s: docker compose serves model %s", env_path, asset.ref)
    return env_path


def update_compose_env(workspace: Workspace, model_ref: str | None = None) -> Path | None:
    """Call ``write_compose_env`` after training or deployment; log instead of raising.

    Returns the ``.env`` path, or None when lab runs outside the repository or the file is
    someone else's: a missing compose file must not fail `lab train`.
    """
    try:
        return write_compose_env(workspace, model_ref)
    except LabError as exc:
        logger.info("docker compose settings not written: %s", exc)
        return None


def _compose_path(path: Path, compose_dir: Path) -> str:
    """Return ``path`` as compose resolves volume sources: ``./relative`` inside ``compose_dir``."""
    try:
        return "./" + path.resolve().relative_to(compose_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def _variable_name(line: str) -> str | None:
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
    return match.group(1) if match else None
