"""Artifact storage interfaces: key-level blob backends and the content-addressed store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_SIZE = 4 * 1024 * 1024
"""Streaming unit: large enough for throughput, small enough for constant memory."""


@dataclass(frozen=True)
class ArtifactInfo:
    """A stored artifact: its plaintext SHA-256, plaintext size and the region it lives in."""

    digest: str
    size: int
    region: str


class LateClaim(Protocol):
    """A SHA-256 that arrives after the bytes it is claimed for (an upload whose digest
    trails its body, so its sender hashes the bytes as it sends them): readable only once
    the source those bytes come from has been read to its end."""

    def value(self) -> str:
        """The claimed digest (lowercase hex).

        Raises:
            InvalidInputError: the claim did not arrive whole, or is not a SHA-256.
        """
        ...


class BlobWriter(Protocol):
    """An in-progress write; invisible to readers until :meth:`commit`."""

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self, key: str) -> None:
        """Make the bytes visible under ``key`` atomically (a no-op if ``key`` exists)."""
        ...

    def abort(self) -> None:
        """Discard the bytes written so far."""
        ...


class BlobStore(Protocol):
    """A backend that stores opaque blobs by key, with atomic commits.

    Implementations: :class:`~ghaf.artifacts.local.LocalBlobStore`,
    :class:`~ghaf.artifacts.s3.S3BlobStore`.
    """

    region: str
    url: str

    def begin_write(self) -> BlobWriter: ...

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Open a committed blob; raises ``NotFoundError`` when missing."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...


class ArtifactStore(Protocol):
    """Content-addressed artifacts: put a stream, get it back verified by its digest."""

    region: str

    def put(
        self, source: BinaryIO | Path, *, expected: str | LateClaim | None = None
    ) -> ArtifactInfo:
        """Stream ``source`` in; with ``expected``, store it only if it hashes to that
        SHA-256 (else raise ``IntegrityError``, storing nothing). A :class:`LateClaim` is
        read once ``source`` has ended, before anything is committed."""
        ...

    def put_bytes(self, data: bytes) -> ArtifactInfo: ...

    def open(self, digest: str, *, verify: bool = True) -> AbstractContextManager[BinaryIO]:
        """A reader that raises ``IntegrityError`` at the end if the bytes do not match.

        ``verify=False`` skips the hash for a consumer that checks the digest itself (a
        download, whose client verifies end to end); an encrypted store's authenticated
        encryption still refuses any altered byte."""
        ...

    def get(self, digest: str, dest: Path) -> ArtifactInfo:
        """Write the artifact to ``dest`` atomically, only once it has verified."""
        ...

    def read_bytes(self, digest: str) -> bytes: ...

    def exists(self, digest: str) -> bool: ...

    def delete(self, digest: str) -> None: ...

    def digests(self) -> Iterator[str]: ...
