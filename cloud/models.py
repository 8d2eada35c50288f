"""Look up registered models in the Azure ML workspace by ``name`` or ``name:version``."""

from __future__ import annotations

import re

from cloud.errors import CloudError, classify, cloud_error, with_retry
from cloud.settings import check_model_name

# Azure ML numbers model versions from 1.
MODEL_VERSION_RE = re.compile(r"^[1-9][0-9]*$")


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name`` or ``name:version`` (``name:latest`` too).

    Raises ``CloudError`` for a name Azure ML rejects or a version that is not a number from 1 up.
    """
    name, separator, version = ref.partition(":")
    if not name:
        raise CloudError(f"invalid model reference {ref!r}; use NAME or NAME:VERSION")
    check_model_name(name, f"model name in {ref!r}")
    if not separator or version == "latest":
        return name, None
    if not MODEL_VERSION_RE.fullmatch(version):
        raise CloudError(
            f"invalid model version {version!r} in {ref!r}; use NAME, NAME:latest or NAME:N with N a version "
            "number from 1 up"
        )
    return name, int(version)


def get_model(workspace, ref: str):
    """Return the registered model ``ref`` (latest version without one)."""
    from azureml.core.model import Model

    name, version = parse_model_ref(ref)
    try:
        return with_retry(lambda: Model(workspace, name=name, version=version), f"get model {ref}")
    except Exception as exc:  # noqa: BLE001
        if classify(exc) == "not_found" or exc.__class__.__name__ == "ModelNotFoundException":
            raise CloudError(
                f"model {ref!r} not found in workspace {workspace.name}; run `lab cloud automl` to register one"
            ) from None
        raise cloud_error(f"reading model {ref}", exc)
