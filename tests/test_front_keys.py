"""Key digests: the keys module, and the front's key check against a keys file of either form."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from local_scoring.keys import (KeyFile, key_digest, key_matches, read_key_digests, regenerate, write_key_digests,
                                write_keys)
from test_service_front import StubApp, log_records, make_front, request

PRIMARY = "p" * 32
SECONDARY = "s" * 32


def test_key_digest_is_sha256_hex():
    assert key_digest(PRIMARY) == hashlib.sha256(PRIMARY.encode()).hexdigest()
    assert len(key_digest(PRIMARY)) == 64


def test_digests_from_plain_keys_file(tmp_path):
    write_keys(tmp_path / "keys.json", PRIMARY, SECONDARY)

    assert read_key_digests(tmp_path / "keys.json") == {"primaryKey": key_digest(PRIMARY),
                                                        "secondaryKey": key_digest(SECONDARY)}


def test_digest_file_holds_no_key(tmp_path):
    path = tmp_path / "keys.json"

    write_key_digests(path, key_digest(PRIMARY).upper(), key_digest(SECONDARY))

    assert json.loads(path.read_text()) == {"primaryKeySha256": key_digest(PRIMARY),
                                            "secondaryKeySha256": key_digest(SECONDARY)}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_digests(path) == {"primaryKey": key_digest(PRIMARY), "secondaryKey": key_digest(SECONDARY)}


def test_write_rejects_malformed_digest(tmp_path):
    with pytest.raises(ValueError, match="64 hexadecimal characters, got 32"):
        write_key_digests(tmp_path / "keys.json", PRIMARY, key_digest(SECONDARY))


@pytest.mark.parametrize("content", [
    {"primaryKeySha256": "z" * 64, "secondaryKeySha256": "0" * 64},
    {"primaryKeySha256": "0" * 63, "secondaryKeySha256": "0" * 64},
])
def test_read_rejects_malformed_digest(tmp_path, content):
    (tmp_path / "keys.json").write_text(json.dumps(content))

    with pytest.raises(ValueError, match="64 hexadecimal characters"):
        read_key_digests(tmp_path / "keys.json")


def test_read_rejects_file_without_keys(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps({"primaryKey": PRIMARY}))

    with pytest.raises(KeyError):
        read_key_digests(tmp_path / "keys.json")


def test_key_matches_either_digest():
    digests = {"primaryKey": key_digest(PRIMARY), "secondaryKey": key_digest(SECONDARY)}

    assert key_matches(PRIMARY, digests)
    assert key_matches(SECONDARY, digests)
    assert not key_matches("x" * 32, digests)
    assert not key_matches(key_digest(PRIMARY), digests)  # the digest itself is no key


def test_key_file_rereads_after_regenerate(tmp_path):
    path = tmp_path / "keys.json"
    write_keys(path, PRIMARY, SECONDARY)
    key_file = KeyFile(path)
    assert key_file.digests()["secondaryKey"] == key_digest(SECONDARY)

    new = regenerate(path, "secondary")

    assert key_file.digests()["secondaryKey"] == key_digest(new["secondaryKey"])


def test_front_accepts_keys_of_digest_file(tmp_path):
    write_key_digests(tmp_path / "keys.json", key_digest(PRIMARY), key_digest(SECONDARY))
    app = StubApp()
    front = make_front(tmp_path, app)

    assert request(front, key=PRIMARY)[0] == 200
    assert request(front, key=SECONDARY)[0] == 200
    assert request(front, key=key_digest(PRIMARY))[0] == 401
    assert request(front, key="x" * 32)[0] == 401
    assert len(app.received) == 2
    assert [record["status"] for record in log_records(tmp_path)] == [200, 200, 401, 401]
