"""Fixtures for the `lab cloud` tests: no traffic beyond loopback, SDK telemetry off.

Every test here is marked ``cloud``. Tests that build SDK objects take the ``sdk`` fixture, which
skips them when the cloud extra is not installed. The others (REST request, settings, dry runs,
progress, download layout) run with the base install too.
"""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import pytest

HERE = Path(__file__).parent
SDK_SKIP_REASON = "azureml.core is not importable; install the cloud extra: pip install -e '.[cloud,test]'"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.cloud)


def closed_loopback_port() -> int:
    """Return a loopback port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Point every proxy variable at a closed loopback port, so a stray HTTP call fails at once.

    Loopback stays direct (NO_PROXY) for the test servers the tests start themselves. The Azure
    sign-in variables are removed so no test picks up a real identity.
    """
    proxy = f"http://127.0.0.1:{closed_loopback_port()}"
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            patch.setenv(name, proxy)
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "LAB_AZURE_CONFIG", "LAB_AZURE_AUTH"):
            patch.delenv(name, raising=False)
        yield proxy


@pytest.fixture(scope="session")
def sdk(no_network):
    """Skip without the Azure ML SDK; otherwise switch its telemetry off before any test uses it.

    azureml-dataprep and azureml-telemetry read their switch from a file in their package folder.
    Neither azureml-core 1.61 nor azureml-dataprep 5.5 has an environment variable for it. Both
    default to off, and writing False makes that explicit for this environment.
    """
    if importlib.util.find_spec("azureml") is None or importlib.util.find_spec("azureml.core") is None:
        pytest.skip(SDK_SKIP_REASON)
    from azureml import telemetry
    from azureml.dataprep.api import _loggerfactory

    _loggerfactory.set_diagnostics_collection(False)
    telemetry.set_diagnostics_collection(send_diagnostics=False)
    assert telemetry.get_diagnostics_collection_info()[0] is False
    import azureml.core

    return azureml.core


@pytest.fixture
def config_json(tmp_path) -> Path:
    """A config.json for a made-up workspace, in ``.azureml/`` as the studio download places it."""
    path = tmp_path / "project" / ".azureml" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "rg-lab-test",
                "workspace_name": "ws-lab-test",
            }
        ),
        encoding="utf-8",
    )
    return path
