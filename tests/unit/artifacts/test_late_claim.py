"""A digest claimed after the bytes (an upload whose SHA-256 trails its body): the plain and
the encrypted store read the claim only once the source has ended, and store nothing when
the bytes do not hash to it or the claim is unreadable."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.artifacts.base import ArtifactStore
from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.store import ContentStore
from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.keys import LocalKeyProvider

DATA = bytes(range(256)) * 20_000  # 5 MB: more than one batch of either store


class _Source(io.RawIOBase):
    """``DATA`` as a stream that remembers whether it was read to its end."""

    def __init__(self) -> None:
        self._inner = io.BytesIO(DATA)
        self.ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._inner.readinto(buffer)
        self.ended = self.ended or count == 0
        return count


class _Claim:
    """A late claim that refuses to be read before its source has ended."""

    def __init__(self, source: _Source, digest: str | None) -> None:
        self._source = source
        self._digest = digest

    def value(self) -> str:
        assert self._source.ended, "the claim was read before the bytes had all arrived"
        if self._digest is None:
            raise InvalidInputError("the claim did not arrive", hint="send it after the bytes")
        return self._digest


@pytest.fixture(params=["plain", "encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    blobs = LocalBlobStore(tmp_path / "blobs")
    if request.param == "plain":
        yield ContentStore(blobs)
        return
    keys = LocalKeyProvider(tmp_path / "keys" / "kek.json")
    keys.create()
    yield EncryptedArtifactStore(blobs, keys)


def _leftovers(store: ArtifactStore) -> list[Path]:
    root: Path = store.blobs.root  # type: ignore[attr-defined]
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_late_claim_that_matches_stores_the_bytes(store: ArtifactStore) -> None:
    source = _Source()
    digest = hashlib.sha256(DATA).hexdigest()
    info = store.put(source, expected=_Claim(source, digest))  # type: ignore[arg-type]
    assert (info.digest, info.size) == (digest, len(DATA))
    assert store.read_bytes(digest) == DATA


def test_a_late_claim_that_differs_stores_nothing(store: ArtifactStore) -> None:
    source = _Source()
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(IntegrityError, match=f"claimed sha256 {wrong}"):
        store.put(source, expected=_Claim(source, wrong))  # type: ignore[arg-type]
    assert list(store.digests()) == [] and _leftovers(store) == []


def test_a_late_claim_that_never_came_stores_nothing(store: ArtifactStore) -> None:
    source = _Source()
    with pytest.raises(InvalidInputError, match="did not arrive"):
        store.put(source, expected=_Claim(source, None))  # type: ignore[arg-type]
    assert list(store.digests()) == [] and _leftovers(store) == []
