"""The bearer token that protects the local pipeline endpoint (`lab auth token`).

The token is generated once with ``secrets.token_urlsafe``, stored in ``auth/token`` under the
workspace with owner-only permissions (folder 0700, file 0600), and printed only by
`lab auth token`. The endpoint reads it on every request, so rotating it needs no restart.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from lab.pipelines.errors import PipelineError
from lab.workspace import Workspace, atomic_write_text

logger = logging.getLogger(__name__)

TOKEN_ENV = "LAB_PIPELINE_TOKEN"
TOKEN_BYTES = 32


def token_path(workspace: Workspace) -> Path:
    return workspace.root / "auth" / "token"


def read_token(workspace: Workspace) -> str | None:
    """Return the stored token, or None when `lab auth token` has not created one yet."""
    path = token_path(workspace)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    # A token that others can read is as good as public, so it is rejected. The folder must be
    # owner-only as well (0700, as get_or_create_token creates it), because a folder that others
    # can write lets them replace the token file.
    if os.stat(path).st_mode & 0o077:
        raise PipelineError(f"{path} is readable by other users; run `lab auth token --rotate` to replace it")
    folder_mode = os.stat(path.parent).st_mode & 0o777
    if folder_mode & 0o077:
        raise PipelineError(
            f"{path.parent} has mode {folder_mode:04o} and is open to other users; run "
            "`lab auth token --rotate`, which sets it to 0700 and replaces the token"
        )
    return token or None


def get_or_create_token(workspace: Workspace, rotate: bool = False) -> str:
    """Return the stored token, creating it (or replacing it when ``rotate``) first if needed."""
    if not rotate:
        existing = read_token(workspace)
        if existing:
            return existing
    path = token_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with workspace.lock():
        atomic_write_text(path, token + "\n", mode=0o600)
    logger.info("%s pipeline token %s in %s", "rotated" if rotate else "created", mask(token), path)
    return token


def token_matches(expected: str, received: str) -> bool:
    """Compare two tokens in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def mask(token: str) -> str:
    """Return the first four characters of a token and a count, safe to log."""
    return f"{token[:4]}...({len(token)} chars)" if token else "(empty)"
