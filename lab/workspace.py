"""The workspace on disk: versioned datasets, models and runs, each a folder with a manifest.

Layout under the workspace root (``./.lab`` unless ``LAB_WORKSPACE`` or ``--workspace`` says
otherwise)::

    datasets/<name>/<version>/manifest.json   (+ data.csv, schema.json)
    models/<name>/<version>/manifest.json     (+ model.pkl, sample.json, ...)
    runs/<run id>/...                         (run records written by training)
    services/<name>/...                       (state of a running scoring service)

Registration is atomic: the files are written into a staging folder, and the folder is renamed
to its version number under a lock only once ``manifest.json`` is complete. An interrupted
registration leaves a staging folder behind, never a version without a manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from lab.errors import WorkspaceError

logger = logging.getLogger(__name__)

WORKSPACE_ENV = "LAB_WORKSPACE"
DEFAULT_WORKSPACE = ".lab"
MANIFEST = "manifest.json"
KINDS = ("datasets", "models")


def utc_now() -> str:
    """Return the current UTC time as an ISO 8601 string with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    ``mode`` sets the permission bits before the rename, so a secret file is never readable by
    others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: Path, obj: Any, mode: int | None = None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", mode=mode)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class Asset:
    """One registered version of a dataset or model."""

    kind: str
    name: str
    version: int
    path: Path
    manifest: dict

    @property
    def ref(self) -> str:
        """The ``name:version`` form that the CLI accepts."""
        return f"{self.name}:{self.version}"


class Workspace:
    """A workspace folder; creating the object touches nothing on disk."""

    def __init__(self, root: str | os.PathLike | None = None):
        if root is None:
            root = os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- folders -----------------------------------------------------------------------------

    def kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown asset kind {kind!r}; expected one of {KINDS}")
        return self.root / kind

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def services_dir(self) -> Path:
        return self.root / "services"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the workspace lock, which serializes version numbering across processes."""
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} is a file, not a folder; pass another --workspace")
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- registration ------------------------------------------------------------------------

    def register(self, kind: str, name: str, build: Callable[[Path], dict]) -> Asset:
        """Register a new version of ``kind``/``name``.

        ``build(folder)`` writes the asset's files into an empty staging folder and returns the
        manifest fields. The version number, name, kind and registration time are added here.
        If ``build`` raises (or the user presses Ctrl-C), the staging folder is removed and no
        version is registered.
        """
        _check_name(name)
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} is a file, not a folder; pass another --workspace")
        staging = self.root / ".staging" / f"{kind}-{name}-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        try:
            fields = build(staging)
            with self.lock():
                version = self._next_version(kind, name)
                manifest = {
                    "kind": kind.rstrip("s"),
                    "name": name,
                    "version": version,
                    "registered_at": utc_now(),
                    **fields,
                }
                atomic_write_json(staging / MANIFEST, manifest)
                target = self.kind_dir(kind) / name / str(version)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("registered %s %s:%d at %s", kind.rstrip("s"), name, version, target)
        return Asset(kind, name, version, target, manifest)

    def _next_version(self, kind: str, name: str) -> int:
        versions = [asset.version for asset in self.list(kind, name)]
        return max(versions, default=0) + 1

    # -- lookup ------------------------------------------------------------------------------

    def list(self, kind: str, name: str | None = None) -> list[Asset]:
        """List registered versions, oldest first; folders without a manifest are skipped."""
        base = self.kind_dir(kind)
        if name:
            names = [name]
        elif base.is_dir():
            names = sorted(folder.name for folder in base.iterdir() if folder.is_dir())
        else:
            names = []
        assets = []
        for asset_name in names:
            folder = base / asset_name
            if not folder.is_dir():
                continue
            for version_dir in folder.iterdir():
                if not version_dir.name.isdigit() or not (version_dir / MANIFEST).is_file():
                    continue
                manifest = read_json(version_dir / MANIFEST)
                assets.append(Asset(kind, asset_name, int(version_dir.name), version_dir, manifest))
        assets.sort(key=lambda asset: (asset.name, asset.version))
        return assets

    def get(self, kind: str, ref: str | None = None) -> Asset:
        """Return ``name:version``, ``name`` (latest version) or, with ``ref=None``, the newest asset.

        Raises ``WorkspaceError`` naming the command that registers one when nothing matches.
        """
        hint = "run `lab data`" if kind == "datasets" else "run `lab train`"
        if ref is None:
            assets = self.list(kind)
            if not assets:
                raise WorkspaceError(f"no {kind} registered in workspace {self.root}; {hint} first")
            return max(assets, key=lambda asset: asset.manifest.get("registered_at", ""))
        name, _, version = ref.partition(":")
        assets = self.list(kind, name)
        if not assets:
            raise WorkspaceError(f"no {kind.rstrip('s')} named {name!r} in workspace {self.root}; {hint} first")
        if not version or version == "latest":
            return assets[-1]
        if not version.isdigit():
            raise WorkspaceError(f"invalid version {version!r} in {ref!r}; use NAME:NUMBER or NAME:latest")
        for asset in assets:
            if asset.version == int(version):
                return asset
        known = ", ".join(str(asset.version) for asset in assets)
        raise WorkspaceError(f"{kind.rstrip('s')} {name!r} has no version {version} (registered: {known})")


def _check_name(name: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not name or not set(name) <= allowed or name.startswith("."):
        raise WorkspaceError(
            f"invalid asset name {name!r}; use letters, digits, '-', '_' and '.', not starting with '.'"
        )
