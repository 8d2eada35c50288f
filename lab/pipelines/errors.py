"""Failures of pipelines, published endpoints and pipeline runs.

``PipelineError`` is what the CLI prints as one line. ``RequestError`` carries the HTTP status that
the local REST endpoint returns for it, so the mapping to a status lives in one place.
"""

from __future__ import annotations

from lab.errors import LabError


class PipelineError(LabError):
    """A pipeline, published pipeline or pipeline run is missing or cannot be used as asked."""

    exit_code = 8


class RequestError(PipelineError):
    """A REST request that the endpoint rejects; ``status`` is the HTTP status to return."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class TriggerError(PipelineError):
    """A pipeline endpoint could not be reached or responded with an error status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
