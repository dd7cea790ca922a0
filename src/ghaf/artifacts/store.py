"""The content-addressed artifact store over any blob backend: stream in, verify out."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ghaf.artifacts.base import CHUNK_SIZE, ArtifactInfo, BlobStore, LateClaim
from ghaf.errors import IntegrityError, InvalidInputError

_PREFIX = "sha256/"


def blob_key(digest: str) -> str:
    """Where the blob of ``digest`` lives: ``sha256/ab/abcdef...``."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise InvalidInputError(
            f"artifact digest {digest!r} is not a SHA-256 hex digest",
            hint="pass the 64-character lowercase hex digest returned by put",
        )
    return f"{_PREFIX}{digest[:2]}/{digest}"


class VerifyingReader(io.RawIOBase):
    """Reads through ``inner`` hashing as it goes; at the end, a mismatch raises."""

    def __init__(self, inner: BinaryIO, digest: str) -> None:
        self._inner = inner
        self._digest = digest
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._hash.update(memoryview(buffer)[:count])
            self.size += count
            return int(count)
        if not self._done:
            self._done = True
            if self._hash.hexdigest() != self._digest:
                raise IntegrityError(
                    f"artifact {self._digest} does not match its digest "
                    f"(read {self.size} bytes hashing to {self._hash.hexdigest()})",
                    hint="the stored blob is corrupt; restore it from a replica or re-create it",
                )
        return 0


def stream_copy(
    source: BinaryIO, write: Callable[[memoryview], object], hasher: Any | None = None
) -> int:
    """Copy ``source`` to ``write`` in fixed chunks, hashing on the way; returns bytes copied.

    Reading and hashing run on this thread while the previous chunk is written on
    another (both release the GIL), so the copy runs at the slower of the two, not
    their sum. Two buffers alternate: one is filled while the other is written.
    """
    buffers = (memoryview(bytearray(CHUNK_SIZE)), memoryview(bytearray(CHUNK_SIZE)))
    readinto = getattr(source, "readinto", None)
    total = 0
    pending: Future[object] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-copy") as writer:
        try:
            for turn in itertools.count():
                view = buffers[turn % 2]
                if readinto is not None:
                    count = readinto(view) or 0
                else:
                    data = source.read(CHUNK_SIZE)
                    count = len(data)
                    view[:count] = data
                if hasher is not None and count:
                    hasher.update(view[:count])
                if pending is not None:
                    pending.result()  # the other buffer is free again
                    pending = None
                if not count:
                    return total
                pending = writer.submit(write, view[:count])
                total += count
        finally:
            if pending is not None:
                pending.result()
    return total  # pragma: no cover - the loop returns


@contextmanager
def atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """A file that appears at ``dest`` only if the block completes without an error.

    Written to a temporary file beside ``dest`` and renamed over it at the end; on any
    error the temporary file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            yield out
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_expected(digest: str, expected: str | LateClaim | None) -> None:
    """Refuse bytes that do not hash to the SHA-256 their sender claimed (a
    :class:`~ghaf.artifacts.base.LateClaim` is read here, once the bytes have ended).

    Raises:
        IntegrityError: ``digest`` is not ``expected``.
        InvalidInputError: a late claim did not arrive whole, or is not a SHA-256.
    """
    if expected is None:
        return
    claimed = expected if isinstance(expected, str) else expected.value()
    if digest != claimed:
        raise IntegrityError(
            f"refused: the sender claimed sha256 {claimed}, the bytes that arrived hash to "
            f"{digest}",
            hint="the file changed on the way or while it was read; send it again",
        )


class ContentStore:
    """Content-addressed artifacts (SHA-256 of the bytes) on a :class:`BlobStore`."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.region = blobs.region

    def put(
        self, source: BinaryIO | Path, *, expected: str | LateClaim | None = None
    ) -> ArtifactInfo:
        """Stream ``source`` in; identical content is stored once. With ``expected``, only
        bytes that hash to it are stored."""
        if isinstance(source, Path):
            with source.open("rb", buffering=0) as handle:
                return self.put(handle, expected=expected)
        writer = self.blobs.begin_write()
        hasher = hashlib.sha256()
        try:
            size = stream_copy(source, writer.write, hasher)
            digest = hasher.hexdigest()
            check_expected(digest, expected)
            writer.commit(blob_key(digest))
        except BaseException:
            writer.abort()
            raise
        return ArtifactInfo(digest=digest, size=size, region=self.region)

    def put_bytes(self, data: bytes) -> ArtifactInfo:
        """Store a small in-memory payload."""
        return self.put(io.BytesIO(data))

    @contextmanager
    def open(self, digest: str, *, verify: bool = True) -> Iterator[BinaryIO]:
        """A verifying reader; read to the end to have the digest checked."""
        with self.blobs.open_read(blob_key(digest)) as raw:
            yield io.BufferedReader(VerifyingReader(raw, digest), CHUNK_SIZE) if verify else raw

    def get(self, digest: str, dest: Path) -> ArtifactInfo:
        """Copy the artifact to ``dest``; ``dest`` appears only after it verified.

        No fsync: the store holds the durable copy, and every loader re-verifies
        what it reads, so a copy torn by a power cut is caught, not trusted.
        """
        with atomic_output(dest) as out, self.blobs.open_read(blob_key(digest)) as raw:
            size = stream_copy(VerifyingReader(raw, digest), out.write)  # type: ignore[arg-type]
        return ArtifactInfo(digest=digest, size=size, region=self.region)

    def read_bytes(self, digest: str) -> bytes:
        """Read a small artifact into memory, verified."""
        with self.open(digest) as handle:
            return handle.read()

    def exists(self, digest: str) -> bool:
        return self.blobs.exists(blob_key(digest))

    def delete(self, digest: str) -> None:
        self.blobs.delete(blob_key(digest))

    def digests(self) -> Iterator[str]:
        for key in self.blobs.keys(_PREFIX):
            yield key.rsplit("/", 1)[-1]
