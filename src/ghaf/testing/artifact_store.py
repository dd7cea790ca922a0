"""Contract suite for :class:`~ghaf.artifacts.base.ArtifactStore` implementations.

Provide an ``artifact_store`` fixture returning a fresh, empty store. The plain
content store and the encrypted store both pass it, on every blob backend.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ghaf.artifacts.base import ArtifactStore
from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError

_SIZES = (0, 1, 16383, 16384, 16385, 4 * 1024 * 1024, 5_000_001)


class ArtifactStoreContract:
    """Behaviour every artifact store shows: addressing, round trips, atomic gets."""

    @pytest.mark.parametrize("size", _SIZES)
    def test_round_trip(self, artifact_store: ArtifactStore, tmp_path: Path, size: int) -> None:
        data = (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]
        info = artifact_store.put(io.BytesIO(data))
        assert info.digest == hashlib.sha256(data).hexdigest()
        assert (info.size, info.region) == (size, artifact_store.region)
        assert artifact_store.exists(info.digest)
        assert artifact_store.read_bytes(info.digest) == data
        with artifact_store.open(info.digest) as handle:
            assert handle.read() == data
        assert artifact_store.get(info.digest, tmp_path / "out.bin") == info
        assert (tmp_path / "out.bin").read_bytes() == data

    def test_put_from_path(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        source = tmp_path / "source.bin"
        source.write_bytes(b"from a file")
        info = artifact_store.put(source)
        assert artifact_store.read_bytes(info.digest) == b"from a file"

    def test_a_put_that_does_not_hash_to_its_claim_stores_nothing(
        self, artifact_store: ArtifactStore
    ) -> None:
        data = b"what arrived" * 1000
        wrong = hashlib.sha256(b"what was claimed").hexdigest()
        with pytest.raises(IntegrityError, match=f"claimed sha256 {wrong}"):
            artifact_store.put(io.BytesIO(data), expected=wrong)
        assert list(artifact_store.digests()) == []
        right = hashlib.sha256(data).hexdigest()
        assert artifact_store.put(io.BytesIO(data), expected=right).digest == right

    def test_identical_content_is_stored_once(self, artifact_store: ArtifactStore) -> None:
        first = artifact_store.put_bytes(b"same bytes")
        second = artifact_store.put_bytes(b"same bytes")
        assert first == second
        assert list(artifact_store.digests()) == [first.digest]
        assert artifact_store.read_bytes(first.digest) == b"same bytes"

    def test_missing_and_malformed_digests(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        with pytest.raises(NotFoundError):
            artifact_store.read_bytes("0" * 64)
        with pytest.raises(NotFoundError):
            artifact_store.get("0" * 64, tmp_path / "out" / "never.bin")
        with pytest.raises(InvalidInputError, match="not a SHA-256"):
            artifact_store.read_bytes("../../etc/passwd")
        assert not artifact_store.exists("0" * 64)
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []

    def test_delete_and_listing(self, artifact_store: ArtifactStore) -> None:
        kept = artifact_store.put_bytes(b"kept")
        gone = artifact_store.put_bytes(b"gone")
        assert sorted(artifact_store.digests()) == sorted([kept.digest, gone.digest])
        artifact_store.delete(gone.digest)
        assert not artifact_store.exists(gone.digest)
        assert list(artifact_store.digests()) == [kept.digest]
