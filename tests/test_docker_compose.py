"""`docker compose up` serves a registered model with the ACI contract.

The stack is the repository's docker-compose.yml with an env file written by
``write_compose_env`` for a small real model, on free loopback ports, under its own compose
project name. The contract suite (tests/contract/) then runs against it unchanged, through
``LAB_CONTRACT_SCORING_URI`` and ``LAB_CONTRACT_KEY``, in a child pytest. Everything is torn down
afterwards, volumes included. All tests skip when no Docker engine responds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lab.workspace import Workspace
from local_scoring import docker_target
from local_scoring.process import free_port
from test_docker import engine_unavailable_reason, register_model, wait_for_ok

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY_BYTES = 256 * 1024
MAX_ROWS = 50
READY_TIMEOUT_S = 180
CONTRACT_TIMEOUT_S = 900


def compose_command() -> list[str] | None:
    """Return ``docker compose`` when the plugin exists, else ``docker-compose``, else None."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@dataclass(frozen=True)
class Stack:
    command: list[str]
    env_file: Path
    scoring_uri: str
    swagger_ui: str
    swagger_origin: str
    primary: str
    secondary: str
    sample: list[dict]

    def compose(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command, "--env-file", str(self.env_file), "-f", str(ROOT / "docker-compose.yml"),
             "-p", self.project, *arguments],
            capture_output=True, text=True, check=check, timeout=600,
        )

    @property
    def project(self) -> str:
        return f"labtest{os.getpid()}"


def wait_for(url: str, timeout_s: float, stack: "Stack") -> None:
    """Poll ``url`` until it returns 200; fail at once when a container of the stack has exited."""

    def exited() -> str | None:
        services = stack.compose("ps", "--services", "--filter", "status=exited", check=False).stdout.split()
        return f"service(s) {', '.join(services)} exited" if services else None

    wait_for_ok(url, timeout_s, exited)


@pytest.fixture(scope="module")
def stack(small_model_dir, tmp_path_factory):
    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(reason)
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    docker_target.ensure_image(docker_target.engine_client(), docker_target.DEFAULT_IMAGE)

    # The workspace lies outside the env file's folder, so LAB_MODEL_DIR is absolute: compose
    # resolves a relative one against the compose file's folder, the repository.
    workspace = Workspace(tmp_path_factory.mktemp("compose-ws"))
    register_model(workspace, small_model_dir)
    env_file = docker_target.write_compose_env(workspace, compose_dir=tmp_path_factory.mktemp("compose"))
    port, swagger_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    with open(env_file, "a", encoding="utf-8") as handle:
        handle.write(f"LAB_PORT={port}\nLAB_SWAGGER_PORT={swagger_port}\n"
                     f"LAB_MAX_BODY_BYTES={MAX_BODY_BYTES}\nLAB_MAX_ROWS={MAX_ROWS}\n")
    values = docker_target.read_env_file(env_file)
    sample = json.loads((small_model_dir / "sample.json").read_text())["data"]
    result = Stack(
        command=command, env_file=env_file, scoring_uri=f"http://127.0.0.1:{port}/score",
        swagger_ui=f"http://127.0.0.1:{swagger_port}", swagger_origin=f"http://127.0.0.1:{swagger_port}",
        primary=values["LAB_PRIMARY_KEY"], secondary=values["LAB_SECONDARY_KEY"], sample=sample,
    )
    try:
        result.compose("up", "-d", "--no-build")
        wait_for(f"http://127.0.0.1:{port}/", READY_TIMEOUT_S, result)
        wait_for(result.swagger_ui + "/", READY_TIMEOUT_S, result)
        yield result
    except (subprocess.CalledProcessError, TimeoutError, RuntimeError) as exc:
        logs = result.compose("logs", "--no-color", check=False)
        pytest.fail(f"docker compose up failed: {exc}\n{getattr(exc, 'stderr', '')}\n{logs.stdout[-3000:]}")
    finally:
        result.compose("down", "-v", "--remove-orphans", check=False)


def container_of(stack: Stack, service: str):
    engine = docker_target.engine_client()
    found = engine.containers.list(filters={"label": [f"com.docker.compose.project={stack.project}",
                                                      f"com.docker.compose.service={service}"]})
    assert len(found) == 1, f"expected one {service} container, found {len(found)}"
    return found[0]


def test_compose_scores_with_either_key(stack):
    for key in (stack.primary, stack.secondary):
        answer = requests.post(stack.scoring_uri, json={"data": stack.sample[:2]}, timeout=60,
                               headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200
        assert len(answer.json()["result"]) == 2


def test_compose_without_key_is_401(stack):
    answer = requests.post(stack.scoring_uri, json={"data": stack.sample[:1]}, timeout=60)

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_compose_publishes_loopback_only(stack):
    container = container_of(stack, "scoring")

    bindings = container.attrs["HostConfig"]["PortBindings"]

    assert list(bindings) == ["5001/tcp"]
    assert [binding["HostIp"] for binding in bindings["5001/tcp"]] == ["127.0.0.1"]
    assert container.attrs["Config"]["User"] == "10001:10001"
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True


SERVER_ENVIRONS = """
import glob, os, sys
found = 0
for folder in glob.glob("/proc/[0-9]*"):
    if folder == f"/proc/{os.getpid()}":
        continue
    with open(folder + "/cmdline", "rb") as handle:
        if b"gunicorn" not in handle.read():
            continue
    with open(folder + "/environ", "rb") as handle:
        sys.stdout.buffer.write(handle.read() + b"\\n")
    found += 1
sys.stdout.buffer.write(b"gunicorn processes: %d" % found)
"""


def test_compose_keys_not_in_container_config(stack):
    container = container_of(stack, "scoring")

    environment = container.attrs["Config"]["Env"]

    assert [entry for entry in environment if stack.primary in entry] == []
    assert [entry for entry in environment if stack.secondary in entry] == []
    names = {entry.partition("=")[0] for entry in environment}
    assert {"LAB_PRIMARY_KEY_SHA256", "LAB_SECONDARY_KEY_SHA256"} <= names
    assert names.isdisjoint({"LAB_PRIMARY_KEY", "LAB_SECONDARY_KEY"})


def test_compose_keys_not_in_server_env(stack):
    container = container_of(stack, "scoring")

    result = container.exec_run(["python3", "-c", SERVER_ENVIRONS])

    assert result.exit_code == 0
    assert result.output.endswith(b"gunicorn processes: 2")  # the master and one worker
    assert stack.primary.encode() not in result.output
    assert stack.secondary.encode() not in result.output


def test_compose_swagger_ui_points_at_service(stack):
    page = requests.get(stack.swagger_ui + "/", timeout=30)
    initializer = requests.get(stack.swagger_ui + "/swagger-initializer.js", timeout=30)

    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text
    assert f'url: "{stack.scoring_uri.rsplit("/", 1)[0]}/swagger.json"' in initializer.text


def test_compose_request_log_in_volume(stack):
    requests.post(stack.scoring_uri, json={"data": stack.sample[:3]}, timeout=60,
                  headers={"Authorization": f"Bearer {stack.primary}", "x-request-id": "compose-log-check"})
    container = container_of(stack, "scoring")

    result = container.exec_run(["cat", "/var/lib/lab/logs/requests.jsonl"])

    records = {json.loads(line)["request_id"]: json.loads(line) for line in result.output.decode().splitlines()}
    assert records["compose-log-check"]["status"] == 200
    assert records["compose-log-check"]["rows"] == 3
    assert stack.primary not in result.output.decode()


def test_contract_suite_passes_against_compose(stack):
    env = dict(os.environ)
    env.update({
        "LAB_CONTRACT_SCORING_URI": stack.scoring_uri,
        "LAB_CONTRACT_KEY": stack.primary,
        "LAB_CONTRACT_SECONDARY_KEY": stack.secondary,
        "LAB_CONTRACT_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "LAB_CONTRACT_MAX_ROWS": str(MAX_ROWS),
        "LAB_CONTRACT_CORS_ORIGIN": stack.swagger_origin,
    })

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/contract"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CONTRACT_TIMEOUT_S,
    )

    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]
    assert result.returncode == 0, f"contract suite against docker compose: {summary}\n{result.stdout[-4000:]}"
    assert " passed" in summary
