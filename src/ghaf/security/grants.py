"""Grants: short-lived presigned URLs for one encrypted artifact, and the one data key
that goes with it.

The KEK never leaves the server, so a presigned URL carries ciphertext. A **download
grant** hands the client the URL of one body and that artifact's own random data key;
the client decrypts locally and checks the plaintext SHA-256. An **upload grant** hands
it a fresh data key and a URL to PUT the body to a staging key; the grant itself is a
token the server alone can open (the data key wrapped by the KEK, with every term of
the grant bound in as associated data), so the server keeps no state between grant and
commit. At commit the server copies the staged object to its body key (out of the
client's reach), streams it back, decrypts and hashes it, and writes the header only
if it is the file the client announced: a body that does not decrypt to its digest
would otherwise be handed to every later writer of that digest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from ghaf.artifacts.base import ArtifactInfo
from ghaf.artifacts.presign import MAX_SINGLE_PUT, PresigningBlobStore, staged_key
from ghaf.errors import GhafError, IntegrityError, InvalidInputError, NotFoundError
from ghaf.security.base import WrappedKey
from ghaf.security.chunked import CHUNK, HEADER_SIZE, TAG, iter_decrypt
from ghaf.security.encrypted_store import CIPHER, EncryptedArtifactStore, body_context

GRANT_FORMAT = "ghaf-grant/1"
COMMIT_GRACE_S = 3600
"""Seconds after its URL expires that a grant may still be committed (a PUT of a few
GiB that started in time may take that long to finish)."""


def ciphertext_size(size: int) -> int:
    """Bytes of the chunked-encryption ciphertext of ``size`` plaintext bytes (the last
    chunk is always short, possibly empty)."""
    return HEADER_SIZE + size + TAG * (size // CHUNK + 1)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def download_grant(
    store: EncryptedArtifactStore, blobs: PresigningBlobStore, digest: str, expires_s: int
) -> dict[str, Any]:
    """A presigned GET of ``digest``'s body, with that artifact's data key.

    Raises:
        NotFoundError: no such artifact.
        IntegrityError: no header of it unwraps here.
    """
    body, data_key, header = store.unlock(digest)
    return {
        "url": blobs.presign_get(body, expires_s),
        "method": "GET",
        "expires_at": int(time.time()) + expires_s,
        "digest": digest,
        "size": int(header.context.get("size", 0)),
        "body_id": header.body_id,
        "context": body_context(header.body_id).decode(),
        "cipher": CIPHER,
        "data_key": _b64(data_key),
    }


@dataclass(frozen=True)
class UploadTerms:
    """What an upload grant allows: one principal, one project, one file, until when."""

    grant_id: str
    principal: str
    project: str
    digest: str
    size: int
    body_id: str
    expires_at: int

    def aad(self) -> bytes:
        return _canonical({"format": GRANT_FORMAT, **self.__dict__})


def upload_grant(
    store: EncryptedArtifactStore,
    blobs: PresigningBlobStore,
    *,
    principal: str,
    project: str,
    digest: str,
    size: int,
    expires_s: int,
) -> dict[str, Any]:
    """A presigned PUT to a fresh staging key, a fresh data key, and the sealed grant
    to commit with.

    Raises:
        InvalidInputError: the encrypted file would exceed one PUT's limit.
    """
    if ciphertext_size(size) > MAX_SINGLE_PUT:
        raise InvalidInputError(
            f"a file of {size} bytes is over the {MAX_SINGLE_PUT} bytes one presigned PUT "
            "may carry (encrypted)",
            hint="send it through the server's resumable upload (without --direct)",
        )
    terms = UploadTerms(
        grant_id=secrets.token_hex(16),
        principal=principal,
        project=project,
        digest=digest,
        size=size,
        body_id=secrets.token_hex(8),
        expires_at=int(time.time()) + expires_s,
    )
    data_key = os.urandom(32)
    wrapped = store.keys.wrap(data_key, terms.aad())
    sealed = {
        "terms": terms.__dict__,
        "kek_id": wrapped.key_id,
        "kek_version": wrapped.version,
        "wrapped_key": _b64(wrapped.blob),
    }
    return {
        "grant": base64.urlsafe_b64encode(_canonical(sealed)).decode(),
        "url": blobs.presign_put(staged_key(terms.grant_id), expires_s),
        "method": "PUT",
        "expires_at": terms.expires_at,
        "digest": digest,
        "size": size,
        "encrypted_size": ciphertext_size(size),
        "body_id": terms.body_id,
        "context": body_context(terms.body_id).decode(),
        "cipher": CIPHER,
        "data_key": _b64(data_key),
    }


def open_grant(
    store: EncryptedArtifactStore, grant: str, *, principal: str, project: str
) -> tuple[UploadTerms, bytes]:
    """The terms and data key of a sealed upload grant, if it is this caller's, for this
    project, and not past its commit deadline.

    Raises:
        InvalidInputError: not a grant this server sealed (altered, or made up).
        NotFoundError: another principal's or project's grant, or an expired one (which
            read the same).
    """
    try:
        sealed = orjson.loads(base64.urlsafe_b64decode(grant.encode()))
        terms = UploadTerms(**sealed["terms"])
        wrapped = WrappedKey(
            str(sealed["kek_id"]),
            int(sealed["kek_version"]),
            base64.b64decode(sealed["wrapped_key"]),
        )
        staged_key(terms.grant_id)
        data_key = store.keys.unwrap(wrapped, terms.aad())
    except (ValueError, KeyError, TypeError, binascii.Error, GhafError) as exc:
        raise InvalidInputError(
            "field 'grant' is not an upload grant of this server (altered or made up)",
            hint="ask for a new grant: POST /api/v1/projects/{project}/upload-grants",
        ) from exc
    if (terms.principal, terms.project) != (
        principal,
        project,
    ) or time.time() > terms.expires_at + COMMIT_GRACE_S:
        raise NotFoundError(
            f"upload grant {terms.grant_id} does not exist (or expired)",
            hint=f"ask for a new grant: POST /api/v1/projects/{project}/upload-grants",
        )
    return terms, data_key


def commit_upload(
    store: EncryptedArtifactStore, blobs: PresigningBlobStore, terms: UploadTerms, data_key: bytes
) -> ArtifactInfo:
    """Take the staged body of a grant into the store if it decrypts to its digest.

    The object is first copied to its body key (the client's URL cannot write there),
    then verified there; a body that fails is deleted, and nothing else is written.
    Identical content stored already is kept, and the verified copy dropped.

    Raises:
        NotFoundError: nothing was PUT for this grant (or it was committed already).
        IntegrityError: the body is not the announced file; nothing is stored.
    """
    staged = staged_key(terms.grant_id)
    try:
        found = blobs.size(staged)
    except NotFoundError as exc:
        raise NotFoundError(
            f"nothing was uploaded for grant {terms.grant_id} (or it was committed already)",
            hint="PUT the encrypted file to the grant's url, then commit",
        ) from exc
    expected = ciphertext_size(terms.size)
    if found != expected:
        blobs.delete(staged)
        raise IntegrityError(
            f"the upload for grant {terms.grant_id} has {found} bytes; a {terms.size}-byte "
            f"file encrypts to {expected}",
            hint="encrypt the file with the grant's data_key and context, then ask for a new "
            "grant; nothing was stored",
        )
    body = store.body_key(terms.digest, terms.body_id)
    blobs.promote(staged, body)
    try:
        _verify(blobs, body, terms, data_key)
    except BaseException:
        blobs.delete(body)
        raise
    if store.exists(terms.digest):
        blobs.delete(body)  # the bytes are proven; the copy held already serves them
        return ArtifactInfo(digest=terms.digest, size=terms.size, region=store.region)
    return store.seal(terms.digest, terms.size, terms.body_id, data_key)


def _verify(blobs: PresigningBlobStore, body: str, terms: UploadTerms, data_key: bytes) -> None:
    hasher = hashlib.sha256()
    size = 0
    try:
        with blobs.open_read(body) as raw:
            readinto = getattr(raw, "readinto")  # noqa: B009 - BinaryIO does not declare it
            for piece in iter_decrypt(data_key, body_context(terms.body_id), readinto):
                hasher.update(piece)
                size += len(piece)
    except IntegrityError as exc:
        raise IntegrityError(
            f"the upload for grant {terms.grant_id} does not decrypt: {exc.headline}",
            hint="encrypt the file with the grant's data_key and context, then ask for a new "
            "grant; nothing was stored",
        ) from exc
    if hasher.hexdigest() != terms.digest or size != terms.size:
        raise IntegrityError(
            f"the upload for grant {terms.grant_id} decrypts to sha256 {hasher.hexdigest()} "
            f"({size} bytes), not the announced {terms.digest} ({terms.size} bytes)",
            hint="ask for a grant with the file's own SHA-256; nothing was stored",
        )
