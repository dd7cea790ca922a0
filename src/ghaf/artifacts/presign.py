"""Presigned URLs on object storage: what a blob store must offer to hand a client a
short-lived URL for one object, and where granted uploads wait to be verified.

A client that PUTs through a presigned URL writes to a staging key under
:data:`STAGING_PREFIX` (``.tmp/``, which no reader lists), never to a body key: the
server copies the object to its body key and verifies it there (see
:mod:`ghaf.security.grants`), so nothing the client can still write is ever served.
Staged objects nobody committed are removed by ``ghaf gc`` after :data:`STAGED_TTL_S`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ghaf.artifacts.base import BlobStore

STAGING_PREFIX = ".tmp/grants/"
"""Where a granted upload's object waits for its commit."""
MAX_SINGLE_PUT = 5 * 1024**3
"""The most bytes one S3 PUT may carry (S3's limit); a larger file uses the streamed route."""
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


def presigning(blobs: BlobStore) -> PresigningBlobStore | None:
    """``blobs`` when it can presign URLs; None for a store that cannot (local files)."""
    return blobs if isinstance(blobs, PresigningBlobStore) else None


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
    """Staged objects untouched for :data:`STAGED_TTL_S`: (key, bytes, seconds idle)."""
    now = time.time() if now is None else now
    for key, size, modified in blobs.objects(STAGING_PREFIX):
        if now - modified >= STAGED_TTL_S:
            yield key, size, now - modified
