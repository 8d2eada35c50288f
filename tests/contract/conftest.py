"""The scoring service under contract test: a live URI and key from the environment, or a local one.

Set ``LAB_CONTRACT_SCORING_URI`` and ``LAB_CONTRACT_KEY`` (optionally ``LAB_CONTRACT_SECONDARY_KEY``)
to test any running service, such as the Docker container or a live ACI web service. Without
them, the suite deploys the local service with a small real model, once in each payload style.

``LAB_CONTRACT_PROFILE`` is ``lab`` (default: every case) or ``aci``, which skips the cases where
this project responds better than ACI (a 400 naming the field where ACI sends a generic 500,
the 401 body, CORS, the swagger host). ``LAB_CONTRACT_MAX_BODY_BYTES``,
``LAB_CONTRACT_MAX_ROWS`` and ``LAB_CONTRACT_CORS_ORIGIN`` give a remote service's settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lab.client import payload_style_of, swagger_uri_for

URI_ENV = "LAB_CONTRACT_SCORING_URI"
KEY_ENV = "LAB_CONTRACT_KEY"
SECONDARY_KEY_ENV = "LAB_CONTRACT_SECONDARY_KEY"
PROFILE_ENV = "LAB_CONTRACT_PROFILE"
MAX_BODY_ENV = "LAB_CONTRACT_MAX_BODY_BYTES"
MAX_ROWS_ENV = "LAB_CONTRACT_MAX_ROWS"
CORS_ORIGIN_ENV = "LAB_CONTRACT_CORS_ORIGIN"

LOCAL_MAX_BODY_BYTES = 256 * 1024
LOCAL_MAX_ROWS = 50
LOCAL_CORS_ORIGIN = "http://127.0.0.1:8000"
TIMEOUT_S = 60


@dataclass(frozen=True)
class Target:
    """A scoring service and the settings the suite uses for it."""

    scoring_uri: str
    key: str
    secondary_key: str | None
    style: str
    swagger: dict
    profile: str
    max_body_bytes: int
    max_rows: int
    cors_origin: str | None
    request_log: Path | None

    @property
    def base(self) -> str:
        return self.scoring_uri.rsplit("/", 1)[0]

    @property
    def swagger_uri(self) -> str:
        return swagger_uri_for(self.scoring_uri)

    @property
    def columns(self) -> dict[str, dict]:
        """The input columns of the swagger document, in its order: name -> JSON schema."""
        return record_schema(self.swagger)["properties"]

    @property
    def sample_records(self) -> list[dict]:
        """The swagger example records (the model's training sample)."""
        data = input_data_schema(self.swagger)
        return data["example"]

    def wrap(self, records) -> dict:
        """Put records into the request form of the service's payload style."""
        if self.style == "v2":
            return {"Inputs": {"data": records}, "GlobalParameters": {"method": "predict"}}
        return {"data": records}


def input_data_schema(swagger: dict) -> dict:
    properties = swagger["definitions"]["ServiceInput"]["properties"]
    if "data" in properties:
        schema = dict(properties["data"])
        schema.setdefault("example", swagger["definitions"]["ServiceInput"].get("example", {}).get("data"))
        return schema
    schema = dict(properties["Inputs"]["properties"]["data"])
    schema.setdefault("example", swagger["definitions"]["ServiceInput"].get("example", {}).get("Inputs", {}).get("data"))
    return schema


def record_schema(swagger: dict) -> dict:
    return input_data_schema(swagger)["items"]


def _fetch_swagger(scoring_uri: str) -> dict:
    response = requests.get(swagger_uri_for(scoring_uri), timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def _styles() -> list[str]:
    return ["remote"] if os.environ.get(URI_ENV) else ["v1", "v2"]


@pytest.fixture(scope="session", params=_styles())
def target(request) -> Target:
    profile = os.environ.get(PROFILE_ENV, "lab")
    if profile not in ("lab", "aci"):
        raise pytest.UsageError(f"{PROFILE_ENV} must be 'lab' or 'aci', got {profile!r}")
    if request.param == "remote":
        uri, key = os.environ[URI_ENV], os.environ.get(KEY_ENV)
        if not key:
            raise pytest.UsageError(f"{URI_ENV} is set but {KEY_ENV} is not; give the service's primary key")
        swagger = _fetch_swagger(uri)
        yield Target(
            scoring_uri=uri, key=key, secondary_key=os.environ.get(SECONDARY_KEY_ENV) or None,
            style=payload_style_of(swagger), swagger=swagger, profile=profile,
            max_body_bytes=int(os.environ.get(MAX_BODY_ENV, 100 * 1024 * 1024)),
            max_rows=int(os.environ.get(MAX_ROWS_ENV, 10_000)),
            cors_origin=os.environ.get(CORS_ORIGIN_ENV) or None, request_log=None,
        )
        return
    yield from _local_target(request, request.param, profile)


def _local_target(request, style: str, profile: str):
    from local_scoring.keys import read_keys
    from local_scoring.process import ServiceSpec, start, stop

    model_dir = request.getfixturevalue("small_model_dir")
    root = request.getfixturevalue("tmp_path_factory").mktemp(f"contract-{style}")
    name = f"contract-{style}"
    state = start(root, ServiceSpec(
        name=name, model_dir=model_dir, port=0, payload_style=style, max_body_bytes=LOCAL_MAX_BODY_BYTES,
        max_rows=LOCAL_MAX_ROWS, cors_origins=LOCAL_CORS_ORIGIN,
    ))
    try:
        keys = read_keys(root / name / "keys.json")
        yield Target(
            scoring_uri=state["scoring_uri"], key=keys["primaryKey"], secondary_key=keys["secondaryKey"],
            style=style, swagger=_fetch_swagger(state["scoring_uri"]), profile=profile,
            max_body_bytes=LOCAL_MAX_BODY_BYTES, max_rows=LOCAL_MAX_ROWS, cors_origin=LOCAL_CORS_ORIGIN,
            request_log=Path(state["request_log"]),
        )
    finally:
        stop(root, name)


@pytest.fixture
def lab_only(target: Target) -> None:
    """Skip a case where this project responds better than ACI when the profile is ``aci``."""
    if target.profile == "aci":
        pytest.skip("a case where the local service responds better than ACI; the aci profile skips it")
