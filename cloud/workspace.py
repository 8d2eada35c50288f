"""Find ``config.json``, sign in, and open the Azure ML workspace it names.

``find_config`` and ``read_config`` look for the file the way ``Workspace.from_config`` does
(``.azureml/``, ``aml_config/``, then the folder itself, walking up to the root) without the SDK,
so a dry run can name the workspace without calling Azure.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cloud.errors import CloudError, cloud_error, with_retry

logger = logging.getLogger(__name__)

AUTH_METHODS = ("interactive", "cli", "service-principal")
CONFIG_FILES = ("config.json", "project.json")
CONFIG_DIRS = (".azureml", "aml_config", None)
CONFIG_KEYS = ("subscription_id", "resource_group", "workspace_name")
SCOPE_FORM = "/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.MachineLearningServices/workspaces/<name>"
SUBSCRIPTION_ID_RE = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
# The variable names azure-identity and the Azure CLI use for a service principal.
SP_TENANT_ENV = "AZURE_TENANT_ID"
SP_CLIENT_ENV = "AZURE_CLIENT_ID"
SP_SECRET_ENV = "AZURE_CLIENT_SECRET"


@dataclass(frozen=True)
class WorkspaceConfig:
    """The three fields of ``config.json`` and the file they came from."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    path: Path

    def describe(self) -> str:
        return (
            f"workspace {self.workspace_name} (resource group {self.resource_group}, "
            f"subscription {self.subscription_id}) from {self.path}"
        )


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """Return the config file for ``start`` (a file, or a folder searched upwards), or None."""
    start_path = Path(start or ".").expanduser().resolve()
    if start_path.is_file():
        return start_path
    for folder in (start_path, *start_path.parents):
        for sub in CONFIG_DIRS:
            for name in CONFIG_FILES:
                candidate = folder / sub / name if sub else folder / name
                if candidate.is_file():
                    return candidate
    return None


def read_config(start: str | os.PathLike | None = None) -> WorkspaceConfig:
    """Read ``config.json`` as azureml-core 1.61 does; raise ``CloudError`` when a real run would fail.

    A file with a non-empty ``Scope`` takes the three fields from it, as ``Workspace.from_config``
    does, and ignores the separate keys. Otherwise ``subscription_id``, ``resource_group`` and
    ``workspace_name`` must be non-empty strings. The subscription id must be a GUID, which Azure
    Resource Manager requires although the SDK does not check it before signing in.
    """
    if start is not None and not Path(start).expanduser().exists():
        raise CloudError(
            f"config file {Path(start).expanduser()} not found; check --config or LAB_AZURE_CONFIG, "
            "or download config.json from Azure ML studio"
        )
    path = find_config(start)
    if path is None:
        where = Path(start or ".").expanduser().resolve()
        raise CloudError(
            f"no config.json in {where}, its .azureml/ folder or any parent; download it from Azure ML "
            "studio (workspace name, top right > Download config file) and pass --config PATH"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CloudError(f"{path}: not a readable JSON file ({exc}); download config.json again") from None
    if not isinstance(document, dict):
        raise CloudError(
            f"{path}: expected a JSON object with subscription_id, resource_group and workspace_name, "
            f"got a JSON {_json_type(document)}; download config.json again from Azure ML studio"
        )
    fields = _fields_from_scope(document, path) if document.get("Scope") else _fields_from_keys(document, path)
    subscription_id = fields["subscription_id"]
    if not SUBSCRIPTION_ID_RE.fullmatch(subscription_id):
        raise CloudError(
            f"{path}: invalid subscription_id {subscription_id[:60]!r}; expected a GUID such as "
            "00000000-0000-0000-0000-000000000000, so download config.json again from Azure ML studio"
        )
    return WorkspaceConfig(path=path, **fields)


def _fields_from_scope(document: dict, path: Path) -> dict[str, str]:
    """Split ``Scope`` the way azureml-core's ``get_workspace_info`` does: path segments 2, 4 and 8."""
    scope = document["Scope"]
    pieces = scope.split("/") if isinstance(scope, str) else []
    if len(pieces) < 9 or not all(pieces[index] for index in (2, 4, 8)):
        raise CloudError(
            f"{path}: invalid Scope {str(scope)[:120]!r}; expected {SCOPE_FORM}, or the keys "
            "subscription_id, resource_group and workspace_name"
        )
    return {"subscription_id": pieces[2], "resource_group": pieces[4], "workspace_name": pieces[8]}


def _fields_from_keys(document: dict, path: Path) -> dict[str, str]:
    fields = {key: document.get(key) for key in CONFIG_KEYS}
    missing = [key for key, value in fields.items() if value is None or value == ""]
    if missing:
        raise CloudError(f"{path}: missing {', '.join(missing)}; download config.json again from Azure ML studio")
    for key, value in fields.items():
        if not isinstance(value, str) or not value.strip():
            raise CloudError(
                f"{path}: invalid {key} {json.dumps(value)[:60]}; expected a non-empty string, so download "
                "config.json again from Azure ML studio"
            )
    return fields


def _json_type(value) -> str:
    """Name the JSON type of a parsed value: array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "array" if isinstance(value, list) else "string"


def missing_service_principal_variables() -> list[str]:
    """Return the service principal's environment variables that are unset or empty."""
    return [name for name in (SP_TENANT_ENV, SP_CLIENT_ENV, SP_SECRET_ENV) if not os.environ.get(name)]


def make_auth(method: str, tenant_id: str | None = None):
    """Return an SDK v1 authentication object for ``method``.

    ``service-principal`` reads AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET. Raises
    ``CloudError`` naming the missing variables; nothing is sent to Azure until the workspace is
    opened.
    """
    from azureml.core.authentication import (
        AzureCliAuthentication,
        InteractiveLoginAuthentication,
        ServicePrincipalAuthentication,
    )

    if method == "interactive":
        return InteractiveLoginAuthentication(tenant_id=tenant_id)
    if method == "cli":
        return AzureCliAuthentication()
    if method == "service-principal":
        missing = missing_service_principal_variables()
        if missing:
            raise CloudError(
                f"--auth service-principal needs {', '.join(missing)} in the environment; set them from the "
                "service principal's app registration"
            )
        return ServicePrincipalAuthentication(
            tenant_id=tenant_id or os.environ[SP_TENANT_ENV],
            service_principal_id=os.environ[SP_CLIENT_ENV],
            service_principal_password=os.environ[SP_SECRET_ENV],
        )
    raise CloudError(f"unknown auth method {method!r}; use one of {', '.join(AUTH_METHODS)}")


def open_workspace(config: WorkspaceConfig, auth):
    """Open the workspace named by ``config`` with ``auth``; raise ``CloudError`` on failure."""
    from azureml.core import Workspace

    logger.info("opening %s", config.describe())
    try:
        return with_retry(
            lambda: Workspace.from_config(path=str(config.path), auth=auth),
            f"open workspace {config.workspace_name}",
        )
    except Exception as exc:  # noqa: BLE001 - SDK and azure-identity raise unrelated types
        raise cloud_error(f"opening workspace {config.workspace_name} (resource group {config.resource_group})", exc)


@dataclass
class CloudSession:
    """Config, auth object and workspace of one command; the workspace is opened on first use."""

    config: WorkspaceConfig
    auth_method: str
    _auth: object = None
    _workspace: object = None

    @property
    def auth(self):
        if self._auth is None:
            self._auth = make_auth(self.auth_method)
        return self._auth

    @property
    def workspace(self):
        if self._workspace is None:
            self._workspace = open_workspace(self.config, self.auth)
        return self._workspace

    def auth_header(self) -> dict[str, str]:
        """Return ``{"Authorization": "Bearer <AAD token>"}`` for REST calls to the workspace."""
        try:
            return self.auth.get_authentication_header()
        except Exception as exc:  # noqa: BLE001
            raise cloud_error(f"getting an AAD token with --auth {self.auth_method}", exc)
