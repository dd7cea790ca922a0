"""Presigned URLs for one artifact on S3, as governed operations: a download grant is an
audited read, an upload grant's commit is the upload it completes (``model.upload``,
through the spine, so the file counts as uploaded to the project only once verified).

The mechanics (data keys, sealed grants, verifying a staged body) are
:mod:`ghaf.security.grants`; this module decides whether a server offers them and
records who was handed what.
"""

from __future__ import annotations

import time
from typing import Any

from ghaf.artifacts.base import ArtifactInfo
from ghaf.artifacts.presign import PresigningBlobStore, presigning
from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.registry.uploads import UPLOAD_ACTION
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.grants import (
    PARTS_PER_ANSWER,
    UploadTerms,
    abort_upload,
    commit_upload,
    download_grant,
    open_grant,
    part_urls,
    upload_grant,
)
from ghaf.security.identity import Actor

_STREAMED = "use the streamed route instead (drop --direct, or direct=False)"


class PresignedUrlsUnavailableError(InvalidInputError):
    """This server hands out no presigned URLs (its artifacts are not on S3, or the
    operator switched them off); the streamed routes always work."""


def presigned_store(platform: Platform) -> tuple[EncryptedArtifactStore, PresigningBlobStore]:
    """The encrypted store and its presigning blob store, when this server offers grants.

    Opening the store first means a bucket that fails its residency check (its real
    region is not the configured one) refuses the grant as it refuses every write.

    Raises:
        PresignedUrlsUnavailableError: switched off, artifacts not encrypted by Ghaf, or
            not on object storage.
        ConfigError: the artifact store refuses to open.
    """
    if not platform.settings.server.presigned_urls:
        raise PresignedUrlsUnavailableError(
            "this server hands out no presigned URLs (server.presigned_urls is off)",
            hint=_STREAMED,
        )
    store = platform.artifacts
    if not isinstance(store, EncryptedArtifactStore):
        raise PresignedUrlsUnavailableError(
            "presigned URLs need artifacts encrypted by Ghaf (security.encrypt_artifacts)",
            hint=_STREAMED,
        )
    blobs = presigning(store.blobs)
    if blobs is None:
        raise PresignedUrlsUnavailableError(
            "presigned URLs need an S3 artifact store; this server keeps artifacts in local files",
            hint=_STREAMED,
        )
    return store, blobs


def presigned_offer(platform: Platform) -> dict[str, Any]:
    """What a client may use: presigned URLs (and for how long), or only streaming."""
    try:
        presigned_store(platform)
    except PresignedUrlsUnavailableError as exc:
        return {"streamed": True, "presigned": False, "reason": exc.headline}
    return {
        "streamed": True,
        "presigned": True,
        "expires_s": platform.settings.server.presigned_expiry_s,
    }


def grant_download(
    platform: Platform,
    actor: Actor,
    digest: str,
    *,
    action: str,
    resource: str,
    project: str,
    path: str,
) -> dict[str, Any]:
    """A presigned GET of one file the caller may read (the caller authorized it), with
    its data key; audited as an allowed ``action`` on ``resource``.

    Raises:
        PresignedUrlsUnavailableError: the server offers no presigned URLs.
    """
    store, blobs = presigned_store(platform)
    expires_s = platform.settings.server.presigned_expiry_s
    grant = download_grant(store, blobs, digest, expires_s)
    details = {"grant": "presigned-get", "path": path, "digest": digest}
    with platform.spine.operation(actor, action, resource, project, details):
        pass
    return grant


def grant_upload(
    platform: Platform,
    actor: Actor,
    *,
    project: str,
    digest: str,
    size: int,
    in_parts: bool = False,
) -> dict[str, Any]:
    """A presigned PUT for one file the caller may upload to ``project`` (the caller
    authorized ``model.upload``), a fresh data key, and the sealed grant.

    With ``in_parts`` (the client sends parts), a file whose ciphertext is over
    ``server.presigned_part_mib`` goes in parts: the grant begins a multipart upload
    and carries the first part URLs.

    Raises:
        PresignedUrlsUnavailableError: the server offers no presigned URLs.
        InvalidInputError: the file is too large for S3.
    """
    store, blobs = presigned_store(platform)
    return upload_grant(
        store,
        blobs,
        principal=actor.name,
        project=project,
        digest=digest,
        size=size,
        expires_s=platform.settings.server.presigned_expiry_s,
        part_bytes=platform.settings.server.presigned_part_mib * 1024**2 if in_parts else None,
    )


def open_upload_grant(platform: Platform, actor: Actor, grant: str, *, project: str) -> UploadTerms:
    """The terms of ``grant`` if it is the caller's, for ``project``, and still open.

    Raises:
        PresignedUrlsUnavailableError: the server offers no presigned URLs.
        InvalidInputError: not a grant this server sealed.
        NotFoundError: another caller's or project's grant, or an expired one.
    """
    store, _ = presigned_store(platform)
    terms, _ = open_grant(store, grant, principal=actor.name, project=project)
    return terms


def granted_part_urls(platform: Platform, terms: UploadTerms, parts: list[int]) -> dict[str, Any]:
    """Fresh URLs for parts of an open grant in parts (the caller opened it with
    :func:`open_upload_grant` and may still upload its file).

    Raises:
        InvalidInputError: more than :data:`PARTS_PER_ANSWER` parts, a part the grant
            has not, or a grant for one PUT.
    """
    if len(parts) > PARTS_PER_ANSWER:
        raise InvalidInputError(
            f"field 'parts' names {len(parts)} parts; ask for at most {PARTS_PER_ANSWER} at once",
            hint="ask again for the rest",
        )
    _, blobs = presigned_store(platform)
    expires_s = platform.settings.server.presigned_expiry_s
    return {
        "grant_id": terms.grant_id,
        "parts": part_urls(blobs, terms, parts, expires_s),
        "expires_at": int(time.time()) + expires_s,
    }


def abort_granted_upload(platform: Platform, terms: UploadTerms) -> None:
    """Drop what was sent for an open grant (its parts, or its staged object), so an
    upload given up costs no storage until ``ghaf gc``."""
    _, blobs = presigned_store(platform)
    abort_upload(blobs, terms)


def commit_granted_upload(
    platform: Platform, actor: Actor, grant: str, *, project: str
) -> ArtifactInfo:
    """Store the body PUT for ``grant`` if it decrypts to the announced file.

    Governed as ``model.upload`` of ``artifact:<digest>`` in ``project`` (so it counts
    as uploaded there exactly like a streamed upload); a refused body is audited as a
    failed upload.

    Raises:
        InvalidInputError: ``grant`` is not one this server sealed.
        NotFoundError: another caller's or project's grant, an expired one, or nothing
            was PUT for it.
        IntegrityError: the body is not the announced file; nothing is stored.
    """
    store, blobs = presigned_store(platform)
    terms, data_key = open_grant(store, grant, principal=actor.name, project=project)
    resource = f"artifact:{terms.digest}"
    with platform.spine.operation(actor, UPLOAD_ACTION, resource, project, {"direct": True}) as op:
        info = commit_upload(store, blobs, terms, data_key)
        op.details["size"] = info.size
    return info
