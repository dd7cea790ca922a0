"""Presigned URLs on object storage: what a blob store must offer to hand a client a
short-lived URL for one object, and where granted uploads wait to be verified.

A client that PUTs through a presigned URL writes to a staging key under
:data:`STAGING_PREFIX` (``.tmp/``, which no reader lists), never to a body key: the
server copies the object to its body key and verifies it there (see
:mod:`ghaf.security.grants`), so nothing the client can still write is ever served.
Staged objects nobody committed are removed by ``ghaf gc`` after :data:`STAGED_TTL_S`.

A file too large for one part goes in parts (S3 multipart upload, through a
:class:`MultipartBlobStore`): each part is PUT through a URL signed for that upload and
part number alone, and the server completes the upload on the staging key before it
verifies the object there, as for one PUT. An upload nobody completed is aborted by
``ghaf gc`` after :data:`STAGED_TTL_S` as well (its parts cost storage until then).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ghaf.artifacts.base import BlobStore
from ghaf.errors import NotFoundError

STAGING_PREFIX = ".tmp/grants/"
"""Where a granted upload's object waits for its commit."""
MAX_SINGLE_PUT = 5 * 1024**3
"""The most bytes one S3 PUT may carry (S3's limit), a part of a multipart upload included."""
MIN_PART = 5 * 1024**2
"""The fewest bytes of a part of a multipart upload, the last excepted (S3's limit)."""
MAX_PARTS = 10_000
"""The most parts of one multipart upload (S3's limit)."""
STAGED_TTL_S = 24 * 3600.0
"""Seconds a staged object is kept before ``ghaf gc`` removes it as abandoned."""
_GRANT_ID = re.compile(r"^[0-9a-f]{32}$")


@runtime_checkable
class PresigningBlobStore(BlobStore, Protocol):
    """A blob store that can sign URLs for one object (S3 and compatible stores)."""

    def presign_get(self, key: str, expires_s: int) -> str: ...

    def presign_put(self, key: str, expires_s: int) -> str: ...

    def size(self, key: str) -> int: ...

    def promote(self, staged: str, key: str) -> None:
        """Copy ``staged`` to ``key`` inside the store, then delete ``staged``."""
        ...

    def objects(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """(key, bytes, last modified) under ``prefix``, temporary keys included."""
        ...


@runtime_checkable
class MultipartBlobStore(PresigningBlobStore, Protocol):
    """A presigning store that also takes one object in parts, each PUT through its own
    URL (S3's multipart upload)."""

    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload to ``key``; its upload id."""
        ...

    def presign_part(self, key: str, upload_id: str, part: int, expires_s: int) -> str:
        """A URL that lets its holder PUT part ``part`` of that upload, and nothing else."""
        ...

    def uploaded_parts(self, key: str, upload_id: str) -> list[tuple[int, int, str, float]]:
        """(part number, bytes, ETag, received as a POSIX time) of each part received;
        ``NotFoundError`` when the upload is not in progress (completed, aborted, or
        never begun)."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Make ``key`` the object of those (part number, ETag) parts, in order."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop that upload and its parts (nothing when it is not in progress)."""
        ...

    def pending_multiparts(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        """(key, upload id, begun as a POSIX time) of each upload in progress under
        ``prefix``."""
        ...


def presigning(blobs: BlobStore) -> PresigningBlobStore | None:
    """``blobs`` when it can presign URLs; None for a store that cannot (local files)."""
    return blobs if isinstance(blobs, PresigningBlobStore) else None


def multipart(blobs: PresigningBlobStore) -> MultipartBlobStore | None:
    """``blobs`` when it takes multipart uploads; None for a store that takes one PUT."""
    return blobs if isinstance(blobs, MultipartBlobStore) else None


def staged_key(grant_id: str) -> str:
    """The staging key of grant ``grant_id``.

    Raises:
        ValueError: ``grant_id`` is not 32 hex digits (it came from outside).
    """
    if not _GRANT_ID.match(grant_id):
        raise ValueError(f"not a grant id: {grant_id!r}")
    return STAGING_PREFIX + grant_id


def stale_staged(
    blobs: PresigningBlobStore, now: float | None = None
) -> Iterator[tuple[str, int, float]]:
    """Staged objects untouched for :data:`STAGED_TTL_S`, and multipart uploads never
    completed that got no part for as long (nor began): (key, bytes, seconds idle);
    remove each with :func:`remove_staged`."""
    now = time.time() if now is None else now
    for key, size, modified in blobs.objects(STAGING_PREFIX):
        if now - modified >= STAGED_TTL_S:
            yield key, size, now - modified
    parts = multipart(blobs)
    if parts is None:
        return
    for key, upload_id, begun in parts.pending_multiparts(STAGING_PREFIX):
        try:
            held = parts.uploaded_parts(key, upload_id)
        except NotFoundError:  # completed or aborted meanwhile
            continue
        touched = max([begun, *(received for _, _, _, received in held)])
        if now - touched >= STAGED_TTL_S:
            yield key, sum(size for _, size, _, _ in held), now - touched


def remove_staged(blobs: PresigningBlobStore, key: str) -> None:
    """Delete the staged object ``key`` and abort every multipart upload still open on it."""
    blobs.delete(key)
    parts = multipart(blobs)
    if parts is None:
        return
    for pending, upload_id, _ in list(parts.pending_multiparts(key)):
        if pending == key:
            parts.abort_multipart(key, upload_id)
