"""Destroying one artifact: its data key first (crypto-shredding), then its bytes and copies.

Every artifact of the encrypted store has its own random data key, kept only wrapped in
the artifact's headers (``hdr/...``). Deleting every header destroys the key: the body
cannot be decrypted by anyone, whatever copy of it survives. The body and the decrypted
dataset cache (``HOME/cache/datasets``) go next.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from sqlalchemy import select

from ghaf.errors import GhafError, IntegrityError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.privacy.tables import ErasedArtifactRow
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.spine import current_session

CRYPTO_SHREDDED = "crypto-shredded"
DELETED = "deleted"


def shred_artifact(platform: Platform, digest: str) -> str:
    """Destroy artifact ``digest``; returns how (:data:`CRYPTO_SHREDDED` or :data:`DELETED`).

    Raises:
        IntegrityError: the data key still unwraps after its headers were deleted.
    """
    store = platform.artifacts
    method = DELETED
    if isinstance(store, EncryptedArtifactStore):
        for header in store.headers(digest):
            store.blobs.delete(header.key)
        try:
            store.unlock(digest)
        except GhafError:
            method = CRYPTO_SHREDDED
        else:  # pragma: no cover - a header written meanwhile
            raise IntegrityError(f"artifact {digest} still decrypts after its keys were deleted")
    store.delete(digest)
    forget_cached(platform, digest)
    return method


def forget_cached(platform: Platform, digest: str) -> None:
    """Remove the decrypted local copy ``read_dataset`` keeps of ``digest``, if any."""
    cache = Path(platform.settings.home) / "cache" / "datasets"
    for suffix in (".parquet", ".verified"):
        path = cache / f"{digest}{suffix}"
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)  # the cache keeps its copies read-only
            path.unlink()


def record_erased(digest: str, node: str, reason: str) -> None:
    """Remember (in the current operation) that ``digest`` was destroyed and why."""
    session = current_session()
    if session.get(ErasedArtifactRow, digest) is None:
        session.add(ErasedArtifactRow(digest=digest, node=node, reason=reason, erased_at=utcnow()))
        session.flush()


def erased_digests(platform: Platform) -> dict[str, str]:
    """Digest -> node of every artifact erasure or retention destroyed."""
    with platform.read_session() as session:
        rows = session.execute(select(ErasedArtifactRow.digest, ErasedArtifactRow.node)).all()
    return {str(digest): str(node) for digest, node in rows}
