"""Primary and secondary keys of a scoring service, as ACI's ``get_keys``/``regen_key`` have them.

The keys file is JSON ``{"primaryKey": ..., "secondaryKey": ...}`` written with mode 0600. Keys
are compared in constant time, and only a masked form is ever logged or printed to a terminal.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path

from lab.workspace import atomic_write_json

KEYS_FILE = "keys.json"
KEY_NAMES = {"primary": "primaryKey", "secondary": "secondaryKey"}
KEY_BYTES = 24  # 32 URL-safe characters, the length of an ACI key


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def mask(key: str) -> str:
    """Return the first four characters of ``key`` followed by asterisks."""
    return key[:4] + "*" * 8 if len(key) > 8 else "*" * 8


def write_keys(path: Path, primary: str | None = None, secondary: str | None = None) -> dict[str, str]:
    keys = {"primaryKey": primary or new_key(), "secondaryKey": secondary or new_key()}
    atomic_write_json(path, keys, mode=0o600)
    return keys


def read_keys(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8") as handle:
        keys = json.load(handle)
    return {name: str(keys[name]) for name in ("primaryKey", "secondaryKey")}


def regenerate(path: Path, which: str) -> dict[str, str]:
    """Replace the primary or secondary key; the other one keeps working."""
    field = KEY_NAMES[which.lower()]
    keys = read_keys(path)
    keys[field] = new_key()
    owner = path.stat()
    atomic_write_json(path, keys, mode=0o600)
    if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
        # The replacement file belongs to root; a container's user that read the old file must
        # still read the new one, or the front rejects every request until a redeploy.
        os.chown(path, owner.st_uid, owner.st_gid)
    return keys


def matches(candidate: str, keys: dict[str, str]) -> bool:
    """Compare ``candidate`` with both keys in constant time (both comparisons always run)."""
    candidate_bytes = candidate.encode("utf-8")
    primary = hmac.compare_digest(candidate_bytes, keys["primaryKey"].encode("utf-8"))
    secondary = hmac.compare_digest(candidate_bytes, keys["secondaryKey"].encode("utf-8"))
    return primary | secondary


class KeyFile:
    """Keys read from a file and re-read when it changes, so regenerating needs no restart."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, str] = {}

    def current(self) -> dict[str, str]:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp != self._stamp:
            self._keys = read_keys(self.path)
            self._stamp = stamp
        return self._keys
