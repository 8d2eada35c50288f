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
URL_TAG = "source_url"


def plan_dataset(settings: DatasetSettings) -> PlannedChange:
    return PlannedChange(
        "register or reuse",
        "tabular dataset",
        settings.name,
        {"url": settings.url, "reuse": f"latest version whose {SHA256_TAG} tag matches the file"},
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
    from azureml.core import Dataset

    try:
        return with_retry(lambda: Dataset.get_by_name(workspace, name), f"get dataset {name}")
    except Exception as exc:  # noqa: BLE001
        if classify(exc) == "not_found" or "Cannot find dataset" in str(exc):
            return None
        raise cloud_error(f"reading dataset {name} in workspace {workspace.name}", exc)


def register_or_reuse(workspace, settings: DatasetSettings):
    """Return ``(dataset, reused)``: the latest version when its content hash matches, else a new version.

    NOTE: only the latest version is compared. An older version with the same content is not
    looked up, so switching back to an earlier file registers it again.
    """
    digest = content_sha256(settings.url)
    latest = latest_registered(workspace, settings.name)
    if latest is not None and latest.tags.get(SHA256_TAG) == digest:
        logger.info("reusing dataset %s version %s (sha256 %s)", settings.name, latest.version, digest[:12])
        return latest, True

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
