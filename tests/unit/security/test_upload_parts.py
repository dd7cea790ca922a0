"""An upload in parts: each part encrypted on its own comes out as the one-stream
ciphertext's slice, and the cut into parts keeps within S3's limits."""

from __future__ import annotations

import os

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.artifacts.presign import MAX_PARTS, MAX_SINGLE_PUT, MIN_PART
from ghaf.errors import InvalidInputError
from ghaf.security.chunked import CHUNK, ChunkEncryptor, decrypt_bytes, encrypt_bytes
from ghaf.security.grants import (
    COMMIT_GRACE_S,
    SLOWEST_PARTS_BPS,
    PartLayout,
    UploadTerms,
    ciphertext_size,
)

KEY = bytes(range(32))
CONTEXT = b"ghaf-test-parts"
GiB = 1024**3


def _in_parts(plaintext: bytes, layout: PartLayout, salt: bytes) -> list[bytes]:
    """Each part as the client makes it: alone, in reverse order (order must not matter)."""
    encryptor = ChunkEncryptor(KEY, CONTEXT, salt=salt)
    parts: dict[int, bytes] = {}
    for number in reversed(range(1, layout.count + 1)):
        part = layout.part(number)
        piece = plaintext[part["offset"] : part["offset"] + part["length"]]
        body = encryptor.encrypt(part["first_chunk"], piece, final=number == layout.count)
        parts[number] = (encryptor.header if number == 1 else b"") + bytes(body)
        assert len(parts[number]) == part["size"]
    return [parts[n] for n in sorted(parts)]


@settings(max_examples=60, deadline=None)
@given(
    size=st.one_of(
        st.integers(0, 3 * CHUNK + 5),
        st.sampled_from([CHUNK - 1, CHUNK, CHUNK + 1, 4 * CHUNK, 6 * CHUNK, 6 * CHUNK + 1]),
    ),
    per_part=st.integers(1, 4),
)
def test_parts_encrypted_alone_are_the_stream_ciphertext_cut(size: int, per_part: int) -> None:
    plaintext = os.urandom(size)
    salt = os.urandom(24)
    layout = PartLayout(size, per_part)
    parts = _in_parts(plaintext, layout, salt)
    whole = b"".join(parts)
    assert whole == encrypt_bytes(KEY, CONTEXT, plaintext, salt=salt)
    assert len(whole) == ciphertext_size(size)
    assert decrypt_bytes(KEY, CONTEXT, whole) == plaintext
    # every part but the last is whole chunks: S3 takes no empty part but the last
    assert all(layout.part(n)["length"] == per_part * CHUNK for n in range(1, layout.count))


def test_a_part_that_is_not_whole_chunks_is_refused_unless_it_ends_the_message() -> None:
    encryptor = ChunkEncryptor(KEY, CONTEXT)
    with pytest.raises(InvalidInputError, match="not whole 16384-byte chunks"):
        encryptor.encrypt(0, b"x" * (CHUNK + 1), final=False)
    assert len(encryptor.encrypt(3, b"x" * (CHUNK + 1), final=True)) == CHUNK + 1 + 32


def test_the_cut_keeps_to_s3_s_limits_and_grows_parts_for_a_huge_file() -> None:
    layout = PartLayout.plan(12 * 1024**2, 5 * 1024**2)
    assert layout.count == 3
    sizes = [layout.part(n)["size"] for n in range(1, 4)]
    assert all(s >= MIN_PART for s in sizes[:-1]) and sum(sizes) == ciphertext_size(12 * 1024**2)
    # a part size below S3's least is raised to it
    assert PartLayout.plan(12 * 1024**2, 1024).part_chunks == layout.part_chunks
    # 1 TiB in 5 MiB parts would be 200,000 parts: the parts grow to fit 10,000
    huge = PartLayout.plan(1024 * GiB, MIN_PART)
    assert huge.count <= MAX_PARTS
    assert huge.part(1)["size"] <= MAX_SINGLE_PUT
    with pytest.raises(InvalidInputError, match="more than 10000 parts"):
        PartLayout.plan(MAX_PARTS * MAX_SINGLE_PUT, MIN_PART)
    for wrong in (0, layout.count + 1):
        with pytest.raises(InvalidInputError, match=f"names part {wrong}; this upload has parts"):
            layout.part(wrong)


def test_an_upload_in_parts_is_given_time_in_proportion_to_its_size() -> None:
    terms = {
        "grant_id": "0" * 32,
        "principal": "alice",
        "project": "fraud",
        "digest": "0" * 64,
        "size": 100 * GiB,
        "body_id": "0" * 16,
        "expires_at": 1000,
    }
    one = UploadTerms(**terms)  # type: ignore[arg-type]
    parts = UploadTerms(**terms, upload_id="u", part_chunks=320)  # type: ignore[arg-type]
    assert one.deadline == 1000 + COMMIT_GRACE_S
    assert parts.deadline == 1000 + COMMIT_GRACE_S + 100 * GiB / SLOWEST_PARTS_BPS
    assert 7 * 3600 < parts.deadline - one.deadline < 8 * 3600
    # a one-PUT grant binds the terms it bound before uploads in parts existed
    assert sorted(orjson.loads(one.aad())) == sorted(["format", *terms])
    assert orjson.loads(parts.aad())["upload_id"] == "u"
