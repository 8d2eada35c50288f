"""The docker target: the container entry point, the compose env file, the build context, and
`lab deploy --target docker` against a real Docker engine.

The tests marked ``docker`` skip when ``docker info`` fails or the docker Python package is
missing; the others need neither.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

from lab.errors import ServiceError
from lab.workspace import Workspace
from local_scoring import docker_target
from local_scoring.docker import entrypoint
from local_scoring.keys import key_digest, read_key_digests, write_keys
from local_scoring.process import ServiceSpec

PRIMARY = "p" * 32
SECONDARY = "s" * 32
DIGESTS = {"primaryKey": key_digest(PRIMARY), "secondaryKey": key_digest(SECONDARY)}


def engine_unavailable_reason() -> str | None:
    """Return why the docker tests cannot run here, or None when they can."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python package is not installed (pip install 'docker>=7.1,<8')"
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    result = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"no Docker engine responds (docker info failed: {result.stderr.strip()[:120]})"
    return None


def wait_for_ok(url: str, timeout_s: float, exited: Callable[[], str | None]) -> None:
    """Poll ``url`` until it returns 200; raise at once when ``exited()`` returns why a container stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reason = exited()
        if reason:
            raise RuntimeError(f"{reason} before {url} returned 200")
        try:
            if requests.get(url, timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} did not return 200 within {timeout_s:.0f} s")


needs_engine = pytest.mark.docker


@pytest.fixture(scope="session")
def engine():
    reason = engine_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return docker_target.engine_client()


def register_model(workspace: Workspace, model_dir: Path, name: str = "bank"):
    """Register a copy of ``model_dir`` as a new model version in ``workspace``."""

    def build(folder: Path) -> dict:
        for path in model_dir.iterdir():
            if path.is_file():
                shutil.copyfile(path, folder / path.name)
        return {"label": "y"}

    return workspace.register("models", name, build)


# -- entry point ---------------------------------------------------------------------------


def test_entrypoint_writes_keys_from_env(tmp_path):
    keys_file = tmp_path / "run" / "keys.json"
    env = {"LAB_KEYS_FILE": str(keys_file), "LAB_PRIMARY_KEY": PRIMARY, "LAB_SECONDARY_KEY": SECONDARY}

    entrypoint.prepare_keys(env)

    assert read_key_digests(keys_file) == DIGESTS
    assert PRIMARY not in keys_file.read_text()
    assert SECONDARY not in keys_file.read_text()
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert "LAB_PRIMARY_KEY" not in env
    assert "LAB_SECONDARY_KEY" not in env


def test_entrypoint_writes_digests_from_env(tmp_path):
    keys_file = tmp_path / "run" / "keys.json"
    env = {"LAB_KEYS_FILE": str(keys_file), "LAB_PRIMARY_KEY_SHA256": DIGESTS["primaryKey"].upper(),
           "LAB_SECONDARY_KEY_SHA256": DIGESTS["secondaryKey"]}

    entrypoint.prepare_keys(env)

    assert json.loads(keys_file.read_text()) == {"primaryKeySha256": DIGESTS["primaryKey"],
                                                 "secondaryKeySha256": DIGESTS["secondaryKey"]}
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert "LAB_PRIMARY_KEY_SHA256" not in env
    assert "LAB_SECONDARY_KEY_SHA256" not in env


def test_entrypoint_rejects_malformed_digest(tmp_path):
    env = {"LAB_KEYS_FILE": str(tmp_path / "keys.json"), "LAB_PRIMARY_KEY_SHA256": PRIMARY,
           "LAB_SECONDARY_KEY_SHA256": DIGESTS["secondaryKey"]}

    with pytest.raises(ServiceError, match="LAB_PRIMARY_KEY_SHA256 must be a SHA-256 digest of 64 hexadecimal "
                                           "characters, got 32 characters"):
        entrypoint.prepare_keys(env)
    assert not (tmp_path / "keys.json").exists()


def test_entrypoint_rejects_one_digest_only(tmp_path):
    env = {"LAB_KEYS_FILE": str(tmp_path / "keys.json"), "LAB_PRIMARY_KEY_SHA256": DIGESTS["primaryKey"]}

    with pytest.raises(ServiceError, match="LAB_SECONDARY_KEY_SHA256 must be .* got 0 characters"):
        entrypoint.prepare_keys(env)


def test_entrypoint_rejects_keys_and_digests(tmp_path):
    env = {"LAB_KEYS_FILE": str(tmp_path / "keys.json"), "LAB_PRIMARY_KEY": PRIMARY, "LAB_SECONDARY_KEY": SECONDARY,
           "LAB_PRIMARY_KEY_SHA256": DIGESTS["primaryKey"], "LAB_SECONDARY_KEY_SHA256": DIGESTS["secondaryKey"]}

    with pytest.raises(ServiceError, match="not both"):
        entrypoint.prepare_keys(env)
    assert not (tmp_path / "keys.json").exists()


def test_entrypoint_rejects_short_key(tmp_path):
    env = {"LAB_KEYS_FILE": str(tmp_path / "keys.json"), "LAB_PRIMARY_KEY": "changeme", "LAB_SECONDARY_KEY": SECONDARY}

    with pytest.raises(ServiceError, match="LAB_PRIMARY_KEY has 8 characters, fewer than 16"):
        entrypoint.prepare_keys(env)
    assert not (tmp_path / "keys.json").exists()


def test_entrypoint_rejects_one_key_only(tmp_path):
    env = {"LAB_KEYS_FILE": str(tmp_path / "keys.json"), "LAB_PRIMARY_KEY": PRIMARY}

    with pytest.raises(ServiceError, match="LAB_SECONDARY_KEY has 0 characters"):
        entrypoint.prepare_keys(env)


def test_entrypoint_uses_mounted_keys_file(tmp_path):
    keys_file = tmp_path / "keys.json"
    write_keys(keys_file, PRIMARY, SECONDARY)

    assert entrypoint.prepare_keys({"LAB_KEYS_FILE": str(keys_file)}) == keys_file
    assert read_key_digests(keys_file) == DIGESTS


def test_entrypoint_rejects_unreadable_keys_file(tmp_path):
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"primaryKey": PRIMARY}))

    with pytest.raises(ServiceError, match="keys file .* cannot be read \\(KeyError\\)"):
        entrypoint.prepare_keys({"LAB_KEYS_FILE": str(keys_file)})


def test_entrypoint_without_any_keys_fails(tmp_path):
    with pytest.raises(ServiceError, match="no keys: set LAB_PRIMARY_KEY_SHA256 and LAB_SECONDARY_KEY_SHA256"):
        entrypoint.prepare_keys({"LAB_KEYS_FILE": str(tmp_path / "keys.json")})


def test_entrypoint_names_missing_model_files(tmp_path):
    (tmp_path / "schema.json").write_text("{}")

    with pytest.raises(ServiceError, match=r"is missing model\.pkl, sample\.json; mount a registered model"):
        entrypoint.check_model_dir(tmp_path)


def test_requirements_match_this_environment(small_model_dir):
    assert entrypoint.requirement_mismatches(small_model_dir) == []


def test_requirements_mismatch_is_listed(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==0.0.1\nno-such-package-for-lab==1.0\n# a comment\nflask>=2\n")

    mismatches = entrypoint.requirement_mismatches(tmp_path)

    assert len(mismatches) == 2
    assert mismatches[0].startswith("numpy==0.0.1 (image: ")
    assert mismatches[1] == "no-such-package-for-lab==1.0 (image: not installed)"


def test_requirements_mismatch_fails_unless_skipped(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==0.0.1\n")

    with pytest.raises(ServiceError, match="rebuild the image with pins from the training environment"):
        entrypoint.check_requirements(tmp_path, {})
    entrypoint.check_requirements(tmp_path, {"LAB_SKIP_REQUIREMENTS_CHECK": "1"})


@pytest.mark.parametrize("style, script", [("v1", "score.py"), ("v2", "score_v2.py")])
def test_payload_style_chooses_entry_script(style, script):
    env = {"AML_APP_ROOT": "/var/lib/lab/app", "LAB_PAYLOAD_STYLE": style}

    entrypoint.choose_entry_script(env)

    assert env["AZUREML_ENTRY_SCRIPT"] == f"/var/lib/lab/app/{script}"


def test_unknown_payload_style_fails():
    with pytest.raises(ServiceError, match="LAB_PAYLOAD_STYLE must be v1 or v2, got 'v3'"):
        entrypoint.choose_entry_script({"LAB_PAYLOAD_STYLE": "v3"})


def test_gunicorn_binds_all_interfaces_on_lab_port():
    command = entrypoint.gunicorn_command({"LAB_PORT": "6001", "WORKER_COUNT": "3", "WORKER_TIMEOUT": "9"})

    assert command[command.index("--bind") + 1] == "0.0.0.0:6001"
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--timeout") + 1] == "9"
    assert command[-1] == "local_scoring.wsgi:app"


def test_log_copy_keeps_output_and_exit_code(tmp_path, capfdbinary):
    log = tmp_path / "server.log"

    code = entrypoint.run_with_log_copy(
        ["python3", "-c", "import sys; print('line one'); print('line two', file=sys.stderr); sys.exit(3)"], dict(os.environ), log,
    )

    assert code == 3
    assert log.read_text() == "line one\nline two\n"
    assert b"line one\nline two\n" in capfdbinary.readouterr().out


# -- container environment and build context -----------------------------------------------


def test_container_env_maps_paths(tmp_path, small_model_dir, monkeypatch):
    monkeypatch.setenv("LAB_TEST_HOST_SECRET", "must-not-reach-the-container")
    folder = tmp_path / "services" / "svc"
    spec = ServiceSpec(name="svc", model_dir=small_model_dir, workers=2, cors_origins="http://127.0.0.1:8080")

    env = docker_target.container_env(spec, folder, folder / "score.py")

    assert "LAB_TEST_HOST_SECRET" not in env
    assert "PATH" not in env
    assert env["AZUREML_MODEL_DIR"] == "/var/lib/lab/model"
    assert env["AZUREML_ENTRY_SCRIPT"] == "/var/lib/lab/service/score.py"
    assert env["LAB_KEYS_FILE"] == "/var/lib/lab/service/keys.json"
    assert env["LAB_REQUEST_LOG"] == "/var/lib/lab/service/requests.jsonl"
    assert env["LAB_SERVER_LOG"] == "/var/lib/lab/service/server.log"
    assert env["WORKER_COUNT"] == "2"
    assert env["AML_CORS_ORIGINS"] == "http://127.0.0.1:8080"
    assert env["LAB_PORT"] == "5001"


def test_build_context_has_sources_only(tmp_path):
    root = docker_target.project_root()
    if root is None:
        pytest.skip("the project runs from an installed wheel, not a source checkout")
    buffer = io.BytesIO()

    docker_target.write_build_context(root, buffer)

    buffer.seek(0)
    names = tarfile.open(fileobj=buffer).getnames()
    assert "local_scoring/Dockerfile" in names
    assert "local_scoring/docker/requirements.txt" in names
    assert "lab/workspace.py" in names
    assert not [name for name in names if "__pycache__" in name]
    assert not [name for name in names if name.startswith((".git/", ".lab/", "tests/", "benchmarks/"))]


def test_source_digest_changes_with_a_source(tmp_path):
    root = tmp_path / "checkout"
    (root / "lab").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\n")
    (root / "lab" / "a.py").write_text("A = 1\n")
    before = docker_target.source_digest(root)

    (root / "lab" / "a.py").write_text("A = 2\n")

    assert docker_target.source_digest(root) != before


# -- compose env file ------------------------------------------------------------------------


@pytest.fixture
def compose_checkout(tmp_path, small_model_dir):
    """A folder with this project's compose file and a workspace inside it with one model."""
    (tmp_path / "docker-compose.yml").write_text("services: {scoring: {build: {dockerfile: local_scoring/Dockerfile}}}\n")
    workspace = Workspace(tmp_path / ".lab")
    asset = register_model(workspace, small_model_dir)
    return tmp_path, workspace, asset


def test_compose_env_serves_newest_model(compose_checkout):
    checkout, workspace, asset = compose_checkout

    path = docker_target.write_compose_env(workspace, compose_dir=checkout)

    values = docker_target.read_env_file(path)
    assert path == checkout / ".env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert values["LAB_MODEL"] == "bank:1"
    assert values["LAB_MODEL_DIR"] == "./.lab/models/bank/1"
    assert len(values["LAB_PRIMARY_KEY"]) >= entrypoint.MIN_KEY_CHARS
    assert values["LAB_PRIMARY_KEY"] != values["LAB_SECONDARY_KEY"]
    assert values["LAB_PRIMARY_KEY_SHA256"] == key_digest(values["LAB_PRIMARY_KEY"])
    assert values["LAB_SECONDARY_KEY_SHA256"] == key_digest(values["LAB_SECONDARY_KEY"])


def test_compose_env_keeps_keys_and_other_settings(compose_checkout, small_model_dir):
    checkout, workspace, _ = compose_checkout
    path = docker_target.write_compose_env(workspace, compose_dir=checkout)
    first = docker_target.read_env_file(path)
    path.write_text(path.read_text() + "LAB_PORT=15999\n")
    register_model(workspace, small_model_dir)

    docker_target.write_compose_env(workspace, "bank", compose_dir=checkout)

    second = docker_target.read_env_file(path)
    assert second["LAB_MODEL"] == "bank:2"
    assert second["LAB_MODEL_DIR"] == "./.lab/models/bank/2"
    assert second["LAB_PRIMARY_KEY"] == first["LAB_PRIMARY_KEY"]
    assert second["LAB_SECONDARY_KEY"] == first["LAB_SECONDARY_KEY"]
    assert second["LAB_PRIMARY_KEY_SHA256"] == first["LAB_PRIMARY_KEY_SHA256"]
    assert second["LAB_PORT"] == "15999"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_compose_env_updates_digest_of_edited_key(compose_checkout):
    checkout, workspace, _ = compose_checkout
    path = docker_target.write_compose_env(workspace, compose_dir=checkout)
    first = docker_target.read_env_file(path)
    path.write_text(path.read_text().replace(f"LAB_PRIMARY_KEY={first['LAB_PRIMARY_KEY']}", f"LAB_PRIMARY_KEY={PRIMARY}"))

    docker_target.write_compose_env(workspace, compose_dir=checkout)

    lines = path.read_text().splitlines()
    assert f"LAB_PRIMARY_KEY={PRIMARY}" in lines
    assert f"LAB_PRIMARY_KEY_SHA256={DIGESTS['primaryKey']}" in lines
    assert len([line for line in lines if line.startswith("LAB_PRIMARY_KEY_SHA256=")]) == 1
    assert f"LAB_SECONDARY_KEY_SHA256={key_digest(first['LAB_SECONDARY_KEY'])}" in lines


def test_compose_env_reuses_service_keys(compose_checkout):
    checkout, workspace, _ = compose_checkout
    keys_file = workspace.services_dir / "bankmarketing-service" / "keys.json"
    keys_file.parent.mkdir(parents=True)
    keys_file.write_text(json.dumps({"primaryKey": PRIMARY, "secondaryKey": SECONDARY}))

    values = docker_target.read_env_file(docker_target.write_compose_env(workspace, compose_dir=checkout))

    assert values["LAB_PRIMARY_KEY"] == PRIMARY
    assert values["LAB_SECONDARY_KEY"] == SECONDARY
    assert values["LAB_PRIMARY_KEY_SHA256"] == DIGESTS["primaryKey"]
    assert values["LAB_SECONDARY_KEY_SHA256"] == DIGESTS["secondaryKey"]


def test_compose_env_never_overwrites_foreign_file(compose_checkout):
    checkout, workspace, _ = compose_checkout
    (checkout / ".env").write_text("DATABASE_URL=postgres://example\n")

    with pytest.raises(ServiceError, match="exists and was not written by lab"):
        docker_target.write_compose_env(workspace, compose_dir=checkout)
    assert (checkout / ".env").read_text() == "DATABASE_URL=postgres://example\n"


def test_compose_env_found_from_current_folder(compose_checkout, monkeypatch):
    checkout, workspace, _ = compose_checkout
    monkeypatch.chdir(checkout)

    assert docker_target.update_compose_env(workspace) == checkout / ".env"


def test_compose_env_skipped_outside_a_checkout(tmp_path, small_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path / "elsewhere" / "ws")
    register_model(workspace, small_model_dir)

    assert docker_target.update_compose_env(workspace) is None
    assert not (tmp_path / ".env").exists()


def test_compose_env_absolute_path_outside_checkout(tmp_path, small_model_dir):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    workspace = Workspace(tmp_path / "ws")
    asset = register_model(workspace, small_model_dir)

    values = docker_target.read_env_file(docker_target.write_compose_env(workspace, compose_dir=checkout))

    assert values["LAB_MODEL_DIR"] == str(asset.path.resolve())


# -- swagger-ui server -----------------------------------------------------------------------


def test_swagger_ui_server_points_at_service():
    pytest.importorskip("swagger_ui_bundle", reason="swagger-ui-bundle is not installed (the image has it)")
    from local_scoring.docker import swagger

    server = swagger.make_server("http://127.0.0.1:5001/swagger.json", "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        page = requests.get(f"{base}/", timeout=10)
        initializer = requests.get(f"{base}/swagger-initializer.js", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text
    assert initializer.status_code == 200
    assert 'url: "http://127.0.0.1:5001/swagger.json"' in initializer.text


# -- without an engine -----------------------------------------------------------------------


@pytest.mark.skipif(os.getuid() != 0, reason="only a root caller runs the container as the image's user")
def test_unreadable_model_folder_is_named(tmp_path, small_model_dir):
    folder = tmp_path / "model"
    shutil.copytree(small_model_dir, folder)
    folder.chmod(0o700)

    with pytest.raises(ServiceError, match=r"is not readable by the container's user \(uid 10001\); run `chmod -R o\+rX"):
        docker_target.check_readable_by_others(folder)


def test_no_engine_is_one_line_error(tmp_path, monkeypatch):
    pytest.importorskip("docker", reason="the docker Python package is not installed")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")

    with pytest.raises(ServiceError) as raised:
        docker_target.engine_client()

    message = str(raised.value)
    assert message.startswith(f"no Docker engine responds at unix://{tmp_path}/no-engine.sock")
    assert message.endswith("start it, or deploy with --target process")
    assert "\n" not in message


# -- with an engine: lab deploy --target docker ----------------------------------------------


@pytest.fixture(scope="module")
def docker_service(engine, small_model_dir, tmp_path_factory):
    """The small model deployed through ``lab.service.deploy(target="docker")`` in a temporary workspace."""
    from lab import service as lab_service

    workspace = Workspace(tmp_path_factory.mktemp("docker-ws"))
    register_model(workspace, small_model_dir)
    deployed = lab_service.deploy(workspace, None, {"name": "docker-test", "port": 0}, target="docker")
    yield workspace, deployed
    if docker_target.is_running(lab_service.get_service(workspace, "docker-test").state):
        lab_service.stop(workspace, "docker-test")


@needs_engine
def test_docker_state_has_process_fields(docker_service):
    _, deployed = docker_service
    state = deployed.state

    assert state["target"] == "docker"
    assert state["pid"] is None
    assert docker_target.is_running(state)
    for field in ("name", "host", "port", "scoring_uri", "swagger_uri", "model", "model_dir", "log",
                  "request_log", "keys_file", "started_at", "settings"):
        assert field in state, field
    assert state["host"] == "127.0.0.1"


@needs_engine
def test_docker_port_bound_to_loopback_only(engine, docker_service):
    _, deployed = docker_service
    container = engine.containers.get(deployed.state["container_id"])

    bindings = container.attrs["HostConfig"]["PortBindings"]

    assert list(bindings) == ["5001/tcp"]
    assert [binding["HostIp"] for binding in bindings["5001/tcp"]] == ["127.0.0.1"]
    assert container.attrs["Config"]["User"] != "0"
    assert container.attrs["Config"]["User"] != ""


@needs_engine
def test_docker_scores_with_key_and_logs(docker_service, small_model_dir, wait_for_records):
    from lab.service import read_request_log

    _, deployed = docker_service
    primary, _ = deployed.get_keys()
    sample = json.loads((small_model_dir / "sample.json").read_text())

    answer = requests.post(deployed.scoring_uri, json={"data": sample["data"][:2]}, timeout=60,
                           headers={"Authorization": f"Bearer {primary}", "x-request-id": "docker-test-score"})
    rejected = requests.post(deployed.scoring_uri, json={"data": sample["data"][:2]}, timeout=60)

    assert answer.status_code == 200
    assert len(answer.json()["result"]) == 2
    assert rejected.status_code == 401
    wait_for_records(deployed.request_log, "docker-test-score")
    records = {record["request_id"]: record for record in read_request_log(deployed.request_log)}
    assert records["docker-test-score"]["status"] == 200
    assert records["docker-test-score"]["rows"] == 2
    assert "Listening at: http://0.0.0.0:5001" in Path(deployed.state["log"]).read_text()


@needs_engine
def test_docker_regenerated_key_works_at_once(docker_service, small_model_dir):
    from local_scoring.keys import regenerate

    _, deployed = docker_service
    old_primary, _ = deployed.get_keys()
    new_primary = regenerate(deployed.keys_file, "primary")["primaryKey"]
    sample = json.loads((small_model_dir / "sample.json").read_text())

    with_new = requests.post(deployed.scoring_uri, json={"data": sample["data"][:1]}, timeout=60,
                             headers={"Authorization": f"Bearer {new_primary}"})
    with_old = requests.post(deployed.scoring_uri, json={"data": sample["data"][:1]}, timeout=60,
                             headers={"Authorization": f"Bearer {old_primary}"})

    assert with_new.status_code == 200
    assert with_old.status_code == 401


@needs_engine
def test_docker_stop_removes_container(engine, docker_service):
    from docker.errors import NotFound

    from lab import service as lab_service

    workspace, deployed = docker_service
    container_id = deployed.state["container_id"]

    stopped, was_running = lab_service.stop(workspace, "docker-test")

    assert was_running
    assert stopped.state["container_id"] is None
    assert "stopped_at" in stopped.state
    with pytest.raises(NotFound):
        engine.containers.get(container_id)
    with pytest.raises(requests.ConnectionError):
        requests.get(deployed.scoring_uri.rsplit("/", 1)[0] + "/", timeout=5)


@needs_engine
def test_docker_broken_model_fails_before_ready(engine, tmp_path, small_model_dir):
    folder = tmp_path / "model"
    shutil.copytree(small_model_dir, folder)
    folder.chmod(0o755)
    (folder / "requirements.txt").write_text("numpy==0.0.1\n")
    spec = ServiceSpec(name="docker-broken", model_dir=folder, port=0, ready_timeout_s=120)

    with pytest.raises(ServiceError, match="exited with code 5 before it was ready"):
        docker_target.start(tmp_path / "services", spec)

    assert "numpy==0.0.1 (image: " in (tmp_path / "services" / "docker-broken" / "server.log").read_text()
    assert engine.containers.list(all=True, filters={"name": "lab-docker-broken"}) == []
