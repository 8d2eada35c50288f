"""Primary and secondary keys of a scoring service, as ACI's ``get_keys``/``regen_key`` have them.

The keys file is JSON ``{"primaryKey": ..., "secondaryKey": ...}`` written with mode 0600. A
container that gets only the SHA-256 digests of the keys (docker compose) writes them as
``{"primaryKeySha256": ..., "secondaryKeySha256": ...}`` instead. The front compares the digest
of a presented key with both digests in constant time. Only a masked form of a key is ever
logged or printed to a terminal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from lab.workspace import atomic_write_json

KEYS_FILE = "keys.json"
KEY_NAMES = {"primary": "primaryKey", "secondary": "secondaryKey"}
KEY_BYTES = 24  # 32 URL-safe characters, the length of an ACI key
DIGEST_FIELDS = {"primaryKey": "primaryKeySha256", "secondaryKey": "secondaryKeySha256"}
DIGEST_HEX_CHARS = 64


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


def key_digest(key: str) -> str:
    """Return the SHA-256 digest of ``key`` as 64 lowercase hexadecimal characters."""
    # Keys are 32 random URL-safe characters (192 bits), so an unsalted SHA-256 is adequate:
    # no search can find a key from its digest. Salts and slow hashes are for guessable passwords.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_digest(value: str) -> bool:
    """Return whether ``value`` has the form of a SHA-256 hex digest."""
    return len(value) == DIGEST_HEX_CHARS and all(char in "0123456789abcdefABCDEF" for char in value)


def write_key_digests(path: Path, primary_digest: str, secondary_digest: str) -> None:
    """Write a keys file that contains only the SHA-256 digests of the two keys (mode 0600)."""
    for digest in (primary_digest, secondary_digest):
        if not is_digest(digest):
            raise ValueError(f"a key digest must be {DIGEST_HEX_CHARS} hexadecimal characters, got {len(digest)} characters")
    digests = {DIGEST_FIELDS["primaryKey"]: primary_digest.lower(), DIGEST_FIELDS["secondaryKey"]: secondary_digest.lower()}
    atomic_write_json(path, digests, mode=0o600)


def read_key_digests(path: Path) -> dict[str, str]:
    """Return ``{"primaryKey": digest, "secondaryKey": digest}`` from a keys file of either form.

    Raises ``KeyError`` when the file has neither both keys nor both digests, and ``ValueError``
    when it is not JSON or a digest is malformed.
    """
    with open(path, encoding="utf-8") as handle:
        stored = json.load(handle)
    if not isinstance(stored, dict):
        raise ValueError(f"{path} must contain a JSON object")
    if "primaryKey" in stored and "secondaryKey" in stored:
        return {name: key_digest(str(stored[name])) for name in ("primaryKey", "secondaryKey")}
    digests = {name: str(stored[field]).lower() for name, field in DIGEST_FIELDS.items()}
    if not all(is_digest(digest) for digest in digests.values()):
        raise ValueError(f"{path}: a key digest must be {DIGEST_HEX_CHARS} hexadecimal characters")
    return digests


def key_matches(candidate: str, digests: dict[str, str]) -> bool:
    """Compare the digest of ``candidate`` with both key digests in constant time.

    Both comparisons always run, so the time does not tell which key, if any, matched.
    """
    candidate_digest = key_digest(candidate).encode("ascii")
    primary = hmac.compare_digest(candidate_digest, digests["primaryKey"].encode("ascii"))
    secondary = hmac.compare_digest(candidate_digest, digests["secondaryKey"].encode("ascii"))
    return primary | secondary


class KeyFile:
    """Key digests read from a keys file and re-read when it changes, so regenerating needs no restart."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._digests: dict[str, str] = {}

    def digests(self) -> dict[str, str]:
        """Return the digests of both keys, whether the file contains the keys or only their digests."""
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        if stamp != self._stamp:
            self._digests = read_key_digests(self.path)
            self._stamp = stamp
        return self._digests
