"""Register the training CSV from its URL as a versioned tabular dataset, reusing a matching version."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lab import data as lab_data

from cloud.errors import classify, cloud_error, with_retry
from cloud.plan import PlannedChange
from cloud.settings import DatasetSettings

logger = logging.getLogger(__name__)

SHA256_TAG = "sha256"
# Registered versions, newest first, that register_or_reuse compares with the file before registering it.
REUSE_LOOKBACK_VERSIONS = 20
URL_TAG = "source_url"


def plan_dataset(settings: DatasetSettings) -> PlannedChange:
    return PlannedChange(
        "register or reuse",
        "tabular dataset",
        settings.name,
        {"url": settings.url,
         "reuse": f"newest of the last {REUSE_LOOKBACK_VERSIONS} versions whose {SHA256_TAG} tag matches the file"},
        "none for the dataset itself; it references the URL, nothing is copied to storage",
    )


def content_sha256(url: str) -> str:
    """Return the sha256 of the file at ``url``.

    The official Bank Marketing file has a known hash. Any other URL is downloaded afresh into a
    temporary folder and hashed, because a cached copy may be older than the file at the URL.
    """
    if url == lab_data.OFFICIAL_URL:
        return lab_data.OFFICIAL_SHA256
    with tempfile.TemporaryDirectory(prefix="lab-cloud-dataset-") as tmp:
        target = Path(tmp) / "download.csv"
        lab_data.download(url, target, expected_sha256=None)
        return lab_data.sha256_of(target)


def tabular_dataset_from_url(url: str, validate: bool = True):
    """Build the SDK's ``TabularDataset`` for a delimited file at ``url``.

    With ``validate=False`` the column types are not inferred either, so nothing is read.
    """
    from azureml.core import Dataset

    if validate:
        return Dataset.Tabular.from_delimited_files(path=url)
    return Dataset.Tabular.from_delimited_files(path=url, validate=False, infer_column_types=False)


def latest_registered(workspace, name: str):
    """Return the latest registered version of dataset ``name``, or None when there is none."""
    return registered_version(workspace, name, None)


def registered_version(workspace, name: str, version: int | None):
    """Return version ``version`` of dataset ``name`` (None: the latest), or None when it does not exist."""
    from azureml.core import Dataset

    described = f"{name}:{version}" if version is not None else name
    try:
        if version is None:
            return with_retry(lambda: Dataset.get_by_name(workspace, name), f"get dataset {described}")
        return with_retry(lambda: Dataset.get_by_name(workspace, name, version=version), f"get dataset {described}")
    except Exception as exc:  # noqa: BLE001
        if classify(exc) == "not_found" or "Cannot find dataset" in str(exc):
            return None
        raise cloud_error(f"reading dataset {described} in workspace {workspace.name}", exc)


def find_version_with_content(workspace, name: str, digest: str):
    """Return the newest registered version of ``name`` whose sha256 tag is ``digest``, or None.

    Versions are read newest first, one request each, and at most ``REUSE_LOOKBACK_VERSIONS`` of
    them, so a dataset with a long history costs a bounded number of calls.
    """
    latest = latest_registered(workspace, name)
    if latest is None:
        return None
    if latest.tags.get(SHA256_TAG) == digest:
        return latest
    newest = int(latest.version)
    for version in range(newest - 1, max(newest - REUSE_LOOKBACK_VERSIONS, 0), -1):
        candidate = registered_version(workspace, name, version)
        if candidate is not None and candidate.tags.get(SHA256_TAG) == digest:
            return candidate
    return None


def register_or_reuse(workspace, settings: DatasetSettings):
    """Return ``(dataset, reused)``: a registered version with the same content hash, else a new version.

    The newest matching version among the last ``REUSE_LOOKBACK_VERSIONS`` is reused, so switching
    back to an earlier file reuses its version instead of registering the same content again.
    """
    digest = content_sha256(settings.url)
    matching = find_version_with_content(workspace, settings.name, digest)
    if matching is not None:
        logger.info("reusing dataset %s version %s (sha256 %s)", settings.name, matching.version, digest[:12])
        return matching, True

    tags = {SHA256_TAG: digest, URL_TAG: settings.url}
    try:
        dataset = tabular_dataset_from_url(settings.url)
        registered = with_retry(
            lambda: dataset.register(
                workspace, settings.name, description=settings.description, tags=tags, create_new_version=True
            ),
            f"register dataset {settings.name}",
        )
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"registering dataset {settings.name} from {settings.url}", exc)
    logger.info("registered dataset %s version %s", settings.name, registered.version)
    return registered, False
