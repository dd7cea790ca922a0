"""C2SP chunked encryption against the Wycheproof vectors, plus round-trip properties."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.security.chunked import CHUNK, CT_CHUNK, HEADER_SIZE, decrypt_stream, encrypt_stream

DATA = Path(__file__).parents[2] / "data" / "wycheproof"
FILES = {
    16: "c2sp_chunked_encryption_aes_128_gcm_test.json",
    32: "c2sp_chunked_encryption_aes_256_gcm_test.json",
}


def _vectors() -> list[Any]:
    cases = []
    for key_size, name in FILES.items():
        suite = json.loads((DATA / name).read_text())
        for group in suite["testGroups"]:
            for test in group["tests"]:
                cases.append(pytest.param(key_size, test, id=f"{key_size * 8}-{test['tcId']}"))
    return cases


def test_vector_files_are_complete() -> None:
    assert (DATA / "LICENSE").is_file()
    for name in FILES.values():
        suite = json.loads((DATA / name).read_text())
        count = sum(len(group["tests"]) for group in suite["testGroups"])
        assert count == suite["numberOfTests"] > 30


@pytest.mark.parametrize(("key_size", "test"), _vectors())
def test_wycheproof_vector(key_size: int, test: dict[str, Any]) -> None:
    key = bytes.fromhex(test["key"])
    ctx = bytes.fromhex(test["ctx"])
    ct = zlib.decompress(bytes.fromhex(test["ct"]))
    out = bytearray()
    if test["result"] == "valid":
        size = decrypt_stream(key, ctx, io.BytesIO(ct).readinto, out.extend, key_size=key_size)
        assert size == len(out) == test["msgLength"]
        assert hashlib.sha512(out).hexdigest() == test["msgSha512"]
        # Encryption with the vector's salt reproduces the ciphertext exactly.
        again = bytearray()
        encrypt_stream(
            key, ctx, io.BytesIO(bytes(out)).readinto, again.extend,
            salt=ct[:24], key_size=key_size,
        )  # fmt: skip
        assert bytes(again) == ct
        return
    with pytest.raises((IntegrityError, InvalidInputError)):
        decrypt_stream(key, ctx, io.BytesIO(ct).readinto, out.extend, key_size=key_size)
    # A streaming decrypter may release at most the valid prefix, never more.
    if "PartialPlaintext" in test["flags"]:
        assert len(out) <= test["msgLength"]
        if len(out) == test["msgLength"]:
            assert hashlib.sha512(out).hexdigest() == test["msgSha512"]
    elif "HeaderFailure" in test["flags"] or "InvalidKeySize" in test["flags"]:
        assert out == b""


def _encrypt(key: bytes, data: bytes, ctx: bytes = b"ctx") -> bytes:
    out = bytearray()
    encrypt_stream(key, ctx, io.BytesIO(data).readinto, out.extend)
    return bytes(out)


def _roundtrip_sizes() -> st.SearchStrategy[int]:
    edges = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 128 * CHUNK, 128 * CHUNK + 1]
    return st.one_of(st.sampled_from(edges), st.integers(0, 5 * CHUNK))


@settings(max_examples=60, deadline=None)
@given(size=_roundtrip_sizes(), ctx=st.binary(max_size=40), seed=st.binary(min_size=4, max_size=4))
def test_round_trip(size: int, ctx: bytes, seed: bytes) -> None:
    data = (hashlib.sha256(seed).digest() * (size // 32 + 1))[:size]
    key = os.urandom(32)
    ct = _encrypt(key, data, ctx)
    assert len(ct) == HEADER_SIZE + (size // CHUNK) * CT_CHUNK + (size % CHUNK) + 16
    out = bytearray()
    assert decrypt_stream(key, ctx, io.BytesIO(ct).readinto, out.extend) == size
    assert bytes(out) == data


class _Trickle(io.RawIOBase):
    """A reader that returns at most 7 bytes per call, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[:7]
        return self._data.readinto(view)


def test_short_reads_are_handled() -> None:
    key = os.urandom(32)
    data = os.urandom(3 * CHUNK + 5)
    ct = bytearray()
    encrypt_stream(key, b"", _Trickle(data).readinto, ct.extend)
    assert bytes(ct) != data
    out = bytearray()
    decrypt_stream(key, b"", _Trickle(bytes(ct)).readinto, out.extend)
    assert bytes(out) == data


def _tampered(ct: bytes) -> dict[str, bytes]:
    body = ct[HEADER_SIZE:]
    first, second = body[:CT_CHUNK], body[CT_CHUNK : 2 * CT_CHUNK]
    flip = bytearray(ct)
    flip[HEADER_SIZE + 100] ^= 1
    salt = bytearray(ct)
    salt[0] ^= 1
    commit = bytearray(ct)
    commit[30] ^= 1
    extra = _encrypt(os.urandom(32), b"x" * CHUNK)[HEADER_SIZE : HEADER_SIZE + CT_CHUNK]
    return {
        "body byte": bytes(flip),
        "salt": bytes(salt),
        "commitment": bytes(commit),
        "chunk swap": ct[:HEADER_SIZE] + second + first + body[2 * CT_CHUNK :],
        "truncated at chunk boundary": ct[: HEADER_SIZE + 2 * CT_CHUNK],
        "truncated off boundary": ct[:-5],
        "truncated header": ct[:40],
        "appended chunk": ct + extra,
        "appended byte": ct + b"\0",
        "final chunk dropped, full chunk last": ct[: HEADER_SIZE + 3 * CT_CHUNK],
    }


@pytest.mark.parametrize(
    "kind", list(_tampered(_encrypt(b"k" * 32, b"z" * (3 * CHUNK + 10))).keys())
)
def test_each_tampering_is_refused(kind: str) -> None:
    key = os.urandom(32)
    ct = _encrypt(key, os.urandom(3 * CHUNK + 10))
    bad = _tampered(ct)[kind]
    with pytest.raises(IntegrityError):
        decrypt_stream(key, b"ctx", io.BytesIO(bad).readinto, lambda _piece: None)


def test_wrong_key_and_context_are_refused_before_any_output() -> None:
    key = os.urandom(32)
    ct = _encrypt(key, b"secret")
    seen: list[bytes] = []
    with pytest.raises(IntegrityError, match="commitment"):
        decrypt_stream(os.urandom(32), b"ctx", io.BytesIO(ct).readinto, seen.append)
    with pytest.raises(IntegrityError, match="commitment"):
        decrypt_stream(key, b"other", io.BytesIO(ct).readinto, seen.append)
    assert seen == []
    with pytest.raises(InvalidInputError, match="16 bytes, expected 32"):
        _encrypt(b"short key 16byte", b"")
