"""User-facing failures of the lab, each mapped to one exit code by the CLI.

Every message names the value or file involved and the fix, in one line, so the CLI can print it
without a traceback. Anything that is not a ``LabError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class LabError(Exception):
    """A failure the user can fix; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class DataError(LabError):
    """The input data is missing, unreadable or does not fit the expected form."""

    exit_code = 2


class WorkspaceError(LabError):
    """The workspace folder has no such asset, or its contents are inconsistent."""

    exit_code = 3


class TrainingError(LabError):
    """The AutoML search could not produce a model."""

    exit_code = 4


class ServiceError(LabError):
    """The scoring service could not start, stop or answer."""

    exit_code = 5


class EndpointError(LabError):
    """A scoring URI answered with an error or could not be reached."""

    exit_code = 6


class Interrupted(LabError):
    """The user pressed Ctrl-C; nothing half-written was registered."""

    exit_code = 130
