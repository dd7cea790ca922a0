"""Contract suite for blob backends behind the content-addressed store.

Provide a ``blob_store`` fixture returning a fresh, empty ``BlobStore``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ghaf.artifacts.base import BlobStore
from ghaf.artifacts.store import ContentStore, blob_key
from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError


class BlobStoreContract:
    """Behaviour every blob backend must show through :class:`ContentStore`."""

    def test_round_trip_and_digest(self, blob_store: BlobStore, tmp_path: Path) -> None:
        store = ContentStore(blob_store)
        data = bytes(range(256)) * 40_000  # spans several chunks
        info = store.put(io.BytesIO(data))
        assert info.digest == hashlib.sha256(data).hexdigest()
        assert info.size == len(data)
        assert info.region == blob_store.region
        assert store.read_bytes(info.digest) == data
        store.get(info.digest, tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == data

    def test_empty_payload(self, blob_store: BlobStore) -> None:
        store = ContentStore(blob_store)
        info = store.put_bytes(b"")
        assert info.digest == hashlib.sha256(b"").hexdigest()
        assert store.read_bytes(info.digest) == b""

    def test_identical_content_is_stored_once(self, blob_store: BlobStore) -> None:
        store = ContentStore(blob_store)
        first = store.put_bytes(b"same bytes")
        second = store.put_bytes(b"same bytes")
        assert first == second
        assert list(store.digests()) == [first.digest]

    def test_corrupted_blob_raises_integrity_error_naming_digest(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        store = ContentStore(blob_store)
        good = store.put_bytes(b"original content")
        evil = store.put_bytes(b"tampered content")
        # Overwrite the good blob's bytes with other bytes under the same key.
        writer = blob_store.begin_write()
        with blob_store.open_read(blob_key(evil.digest)) as handle:
            writer.write(handle.read())
        blob_store.delete(blob_key(good.digest))
        writer.commit(blob_key(good.digest))
        with pytest.raises(IntegrityError, match=good.digest):
            store.read_bytes(good.digest)
        with pytest.raises(IntegrityError):
            store.get(good.digest, tmp_path / "out" / "never.bin")
        assert list((tmp_path / "out").iterdir()) == []  # no partial or temp file left

    def test_missing_and_malformed_digests(self, blob_store: BlobStore) -> None:
        store = ContentStore(blob_store)
        with pytest.raises(NotFoundError):
            store.read_bytes("0" * 64)
        with pytest.raises(InvalidInputError, match="not a SHA-256"):
            store.read_bytes("../../etc/passwd")
        assert not store.exists("0" * 64)

    def test_aborted_write_leaves_nothing(self, blob_store: BlobStore) -> None:
        writer = blob_store.begin_write()
        writer.write(b"partial")
        writer.abort()
        assert list(blob_store.keys()) == []

    def test_delete(self, blob_store: BlobStore) -> None:
        store = ContentStore(blob_store)
        info = store.put_bytes(b"to delete")
        assert store.exists(info.digest)
        store.delete(info.digest)
        assert not store.exists(info.digest)
