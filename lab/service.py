"""Deploy registered models to the local scoring service, and look services up.

This is the Python API behind `lab deploy`, `lab keys` and `lab logs`; the serving itself lives in
the ``local_scoring`` package.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from lab.errors import ServiceError, WorkspaceError
from lab.workspace import Workspace
from local_scoring import keys as service_keys
from local_scoring import process
from local_scoring.process import DEFAULT_SERVICE_NAME, ServiceSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """A deployed service as recorded in its folder."""

    name: str
    folder: Path
    state: dict

    @property
    def running(self) -> bool:
        if self.state.get("target") == "docker":
            from local_scoring import docker_target  # imported here: it needs the docker SDK

            return docker_target.is_running(self.state)
        return process.is_running(self.state)

    @property
    def scoring_uri(self) -> str:
        return self.state["scoring_uri"]

    @property
    def swagger_uri(self) -> str:
        return self.state["swagger_uri"]

    @property
    def keys_file(self) -> Path:
        return self.folder / service_keys.KEYS_FILE

    @property
    def request_log(self) -> Path:
        return self.folder / process.REQUEST_LOG

    def get_keys(self) -> tuple[str, str]:
        """Return (primary, secondary), as ``Webservice.get_keys()`` does."""
        keys = service_keys.read_keys(self.keys_file)
        return keys["primaryKey"], keys["secondaryKey"]


def deploy(workspace: Workspace, model_ref: str | None, spec_overrides: dict, target: str = "process") -> Service:
    """Start the scoring service for a registered model (newest model when ``model_ref`` is None).

    ``target`` is ``"process"`` (gunicorn on this machine) or ``"docker"`` (the project's image
    through the Docker engine).
    """
    asset = workspace.get("models", model_ref)
    spec = ServiceSpec(
        name=spec_overrides.pop("name", DEFAULT_SERVICE_NAME),
        model_dir=asset.path,
        model_ref=asset.ref,
        **spec_overrides,
    )
    if target == "docker":
        from local_scoring import docker_target  # imported here: it needs the docker SDK

        state = docker_target.start(workspace.services_dir, spec)
    elif target == "process":
        state = process.start(workspace.services_dir, spec)
    else:
        raise ServiceError(f"unknown deployment target {target!r}; use 'process' or 'docker'")
    return Service(spec.name, workspace.services_dir / spec.name, state)


def get_service(workspace: Workspace, name: str | None = None) -> Service:
    """Return the named service, or the only (or most recently started) one when ``name`` is None."""
    root = workspace.services_dir
    if name is not None:
        state = process.read_state(root / name)
        if state is None:
            raise WorkspaceError(f"no service named {name!r} in {root}; deploy one with `lab deploy`")
        return Service(name, root / name, state)
    services = []
    if root.is_dir():
        for folder in root.iterdir():
            state = process.read_state(folder)
            if state is not None:
                services.append(Service(folder.name, folder, state))
    if not services:
        raise WorkspaceError(f"no service deployed in workspace {workspace.root}; run `lab deploy` first")
    running = [service for service in services if service.running] or services
    return max(running, key=lambda service: service.state.get("started_at", ""))


def stop(workspace: Workspace, name: str | None = None) -> tuple[Service, bool]:
    """Stop the service; return it and whether it was running."""
    service = get_service(workspace, name)
    if service.state.get("target") == "docker":
        from local_scoring import docker_target  # imported here: it needs the docker SDK

        was_running = docker_target.stop(workspace.services_dir, service.name)
    else:
        was_running = process.stop(workspace.services_dir, service.name)
    return get_service(workspace, service.name), was_running


def resolve_uri_and_key(workspace: Workspace, uri: str | None, key: str | None, service_name: str | None):
    """Fill in the scoring URI and primary key from the local service when they are not given."""
    if uri and key is not None:
        return uri, key
    try:
        service = get_service(workspace, service_name)
    except WorkspaceError:
        if uri:
            return uri, key
        raise
    if not uri:
        if not service.running:
            raise ServiceError(f"service {service.name} is not running; start it with `lab deploy`")
        uri = service.scoring_uri
    if key is None and uri == service.scoring_uri:
        key = service.get_keys()[0]
    return uri, key


def read_request_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    logger.warning("skipping a malformed line in %s", path)
    return records


def update_compose_env(workspace: Workspace, model_ref: str) -> Path | None:
    """Point docker-compose.yml's .env at ``model_ref``; return its path, or None outside the repository."""
    from local_scoring import docker_target

    return docker_target.update_compose_env(workspace, model_ref)
