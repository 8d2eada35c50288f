"""Published pipelines: a pipeline version with a display name, version, description and an id.

Like Azure's ``Pipeline.publish(name, description, version)``, publishing assigns a new id each
time; the REST endpoint submits runs by that id. Records live in
``pipelines/published/<id>.json``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from lab.pipelines.definition import PipelineDefinition, get_pipeline, pipelines_dir
from lab.pipelines.errors import PipelineError
from lab.workspace import Workspace, atomic_write_json, read_json, utc_now

logger = logging.getLogger(__name__)

# The local endpoint mirrors Azure's URL shape; these stand in for the subscription, resource
# group and workspace names that a local workspace does not have.
LOCAL_SUBSCRIPTION = "local"
LOCAL_RESOURCE_GROUP = "local"
LOCAL_WORKSPACE = "local"
API_PREFIX = (
    f"/pipelines/v1.0/subscriptions/{LOCAL_SUBSCRIPTION}/resourceGroups/{LOCAL_RESOURCE_GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{LOCAL_WORKSPACE}"
)
HISTORY_PREFIX = API_PREFIX.replace("/pipelines/v1.0/", "/history/v1.0/", 1)
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 2000


@dataclass(frozen=True)
class PublishedPipeline:
    """A published pipeline: ``id`` names it in the endpoint URL, ``pipeline`` is the definition."""

    id: str
    name: str
    version: str
    description: str
    pipeline: str
    published_at: str

    @property
    def submit_path(self) -> str:
        return f"{API_PREFIX}/PipelineRuns/PipelineSubmit/{self.id}"

    def endpoint(self, base_url: str) -> str:
        """Return the submit URL under ``base_url`` (``http://HOST:PORT``)."""
        return base_url.rstrip("/") + self.submit_path

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "pipeline": self.pipeline,
            "published_at": self.published_at,
        }


class PublishedNotFound(PipelineError):
    """No published pipeline with this id exists in the workspace."""


def published_dir(workspace: Workspace) -> Path:
    return pipelines_dir(workspace) / "published"


def publish_pipeline(
    workspace: Workspace,
    pipeline_ref: str | None,
    name: str,
    version: str = "1.0",
    description: str = "",
) -> PublishedPipeline:
    """Publish a stored pipeline version under a display name; returns the record with its new id.

    Raises ``PipelineError`` when the pipeline does not exist or the name is empty or too long.
    """
    definition: PipelineDefinition = get_pipeline(workspace, pipeline_ref)
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise PipelineError(f"invalid published name {name!r}; pass 1 to {MAX_NAME_LENGTH} characters")
    if not version.strip() or len(version) > 100:
        raise PipelineError(f"invalid published version {version!r}; pass a short label such as 1.0")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise PipelineError(f"description has {len(description)} characters; keep it under {MAX_DESCRIPTION_LENGTH}")
    published = PublishedPipeline(
        id=str(uuid.uuid4()),
        name=name,
        version=version,
        description=description,
        pipeline=definition.ref,
        published_at=utc_now(),
    )
    atomic_write_json(published_dir(workspace) / f"{published.id}.json", published.to_json())
    logger.info("published pipeline %s as %r version %s with id %s", definition.ref, name, version, published.id)
    return published


def list_published(workspace: Workspace) -> list[PublishedPipeline]:
    """List published pipelines, oldest first."""
    folder = published_dir(workspace)
    if not folder.is_dir():
        return []
    found = [PublishedPipeline(**read_json(path)) for path in folder.glob("*.json") if not path.name.startswith(".")]
    return sorted(found, key=lambda p: (p.published_at, p.id))


def get_published(workspace: Workspace, pipeline_id: str) -> PublishedPipeline:
    """Return the published pipeline with this id.

    Raises ``PipelineError`` for an id that is not a UUID and ``PublishedNotFound`` when there is none.
    """
    try:
        uuid.UUID(pipeline_id)
    except ValueError:
        raise PipelineError(f"invalid published pipeline id {pipeline_id!r}; expected a UUID") from None
    path = published_dir(workspace) / f"{pipeline_id}.json"
    if not path.is_file():
        raise PublishedNotFound(
            f"no published pipeline with id {pipeline_id} in workspace {workspace.root}; "
            "list them with `lab pipeline list`"
        )
    return PublishedPipeline(**read_json(path))
