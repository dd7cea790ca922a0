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

A file whose ciphertext does not fit one part goes in parts (a **multipart grant**):
the server begins an S3 multipart upload on the staging key and seals its upload id
into the grant; each part is a run of whole encryption chunks (the first also carries
the header), so the client encrypts and sends each on its own, in parallel, and sends
one again alone when it failed. Part URLs are presigned for one upload id and part
number, a batch at a time (:func:`part_urls`), so an upload outlives one URL's life.
At commit the server lists the parts S3 holds, refuses missing or misshapen ones,
completes the upload, and verifies the object exactly as one PUT's.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from ghaf.artifacts.base import ArtifactInfo
from ghaf.artifacts.presign import (
    MAX_PARTS,
    MAX_SINGLE_PUT,
    MIN_PART,
    MultipartBlobStore,
    PresigningBlobStore,
    multipart,
    staged_key,
)
from ghaf.errors import (
    AlreadyExistsError,
    GhafError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from ghaf.security.base import WrappedKey
from ghaf.security.chunked import CHUNK, CT_CHUNK, HEADER_SIZE, TAG, iter_decrypt
from ghaf.security.encrypted_store import CIPHER, EncryptedArtifactStore, body_context

GRANT_FORMAT = "ghaf-grant/1"
PARTS_PER_ANSWER = 100
"""Part URLs one answer carries at most (a grant's first ones, or one ``part_urls``)."""
COMMIT_GRACE_S = 3600
"""Seconds after its URL expires that a grant may still be committed (a PUT of a few
GiB that started in time may take that long to finish)."""
SLOWEST_PARTS_BPS = 4 * 1024**2
"""Bytes a second an upload in parts is given time for beyond :data:`COMMIT_GRACE_S`
(its part URLs are renewed, and it is committed, until then): 100 GiB get 7 hours more."""


def ciphertext_size(size: int) -> int:
    """Bytes of the chunked-encryption ciphertext of ``size`` plaintext bytes (the last
    chunk is always short, possibly empty)."""
    return HEADER_SIZE + size + TAG * (size // CHUNK + 1)


@dataclass(frozen=True)
class PartLayout:
    """How the ciphertext of a ``size``-byte file is cut into parts of ``part_chunks``
    encryption chunks each (the last part fewer; the first also holds the header)."""

    size: int
    part_chunks: int

    @classmethod
    def plan(cls, size: int, part_bytes: int) -> PartLayout:
        """Parts of at least ``part_bytes`` (and S3's 5 MiB) of ciphertext, made larger
        when the file would otherwise need more than S3's 10,000.

        Raises:
            InvalidInputError: even parts of 5 GiB would be more than 10,000.
        """
        chunks = size // CHUNK + 1
        per_part = max(-(-max(part_bytes, MIN_PART) // CT_CHUNK), -(-chunks // MAX_PARTS))
        if HEADER_SIZE + per_part * CT_CHUNK > MAX_SINGLE_PUT:
            raise InvalidInputError(
                f"a file of {size} bytes needs more than {MAX_PARTS} parts of "
                f"{MAX_SINGLE_PUT} bytes, over what one S3 object may hold",
                hint="split the artifact into several files",
            )
        return cls(size, per_part)

    @property
    def count(self) -> int:
        """How many parts."""
        return -(-(self.size // CHUNK + 1) // self.part_chunks)

    def part(self, number: int) -> dict[str, int]:
        """Part ``number`` (1-based): ``offset`` and ``length`` of its plaintext in the
        file, its first chunk's number, and ``size``, its ciphertext bytes.

        Raises:
            InvalidInputError: no such part.
        """
        if not 1 <= number <= self.count:
            raise InvalidInputError(
                f"field 'parts' names part {number}; this upload has parts 1 to {self.count}",
                hint="ask only for the parts the grant's part_count allows",
            )
        first = (number - 1) * self.part_chunks
        last = min(first + self.part_chunks, self.size // CHUNK + 1)
        offset = first * CHUNK
        length = min(last * CHUNK, self.size) - offset
        header = HEADER_SIZE if number == 1 else 0
        return {
            "part": number,
            "offset": offset,
            "length": length,
            "first_chunk": first,
            "size": header + length + (last - first) * TAG,
        }


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
    upload_id: str = ""
    """The S3 multipart upload of a grant in parts; empty for one PUT."""
    part_chunks: int = 0
    """Encryption chunks per part of a grant in parts."""

    def aad(self) -> bytes:
        terms = dict(self.__dict__)
        if not self.upload_id:  # one PUT: the terms as grants before parts were sealed
            del terms["upload_id"], terms["part_chunks"]
        return _canonical({"format": GRANT_FORMAT, **terms})

    @property
    def layout(self) -> PartLayout:
        return PartLayout(self.size, self.part_chunks)

    @property
    def deadline(self) -> float:
        """Until when the grant may be used (part URLs renewed, the upload committed)."""
        slack = self.size / SLOWEST_PARTS_BPS if self.upload_id else 0.0
        return self.expires_at + COMMIT_GRACE_S + slack


def upload_grant(
    store: EncryptedArtifactStore,
    blobs: PresigningBlobStore,
    *,
    principal: str,
    project: str,
    digest: str,
    size: int,
    expires_s: int,
    part_bytes: int | None = None,
) -> dict[str, Any]:
    """A presigned PUT to a fresh staging key, a fresh data key, and the sealed grant
    to commit with; for a file whose ciphertext is over ``part_bytes`` (a client that
    sends parts, and a store that takes them), a multipart upload begun there and the
    first part URLs instead (``method: multipart``).

    Raises:
        InvalidInputError: the encrypted file would exceed one PUT's limit and goes in
            no parts, or S3's limits on parts.
    """
    parts = multipart(blobs)
    layout = None
    if parts is not None and part_bytes is not None:
        layout = PartLayout.plan(size, part_bytes)
    if layout is not None and layout.count < 2:
        layout = None
    if layout is None and ciphertext_size(size) > MAX_SINGLE_PUT:
        raise InvalidInputError(
            f"a file of {size} bytes is over the {MAX_SINGLE_PUT} bytes one presigned PUT "
            "may carry (encrypted)",
            hint='ask for a grant in parts ("parts": true; this SDK\'s direct uploads do), '
            "or send it through the server's resumable upload (without --direct)",
        )
    grant_id = secrets.token_hex(16)
    upload_id = ""
    if layout is not None and parts is not None:
        upload_id = parts.start_multipart(staged_key(grant_id))
    terms = UploadTerms(
        grant_id=grant_id,
        principal=principal,
        project=project,
        digest=digest,
        size=size,
        body_id=secrets.token_hex(8),
        expires_at=int(time.time()) + expires_s,
        upload_id=upload_id,
        part_chunks=layout.part_chunks if layout is not None else 0,
    )
    data_key = os.urandom(32)
    wrapped = store.keys.wrap(data_key, terms.aad())
    sealed = {
        "terms": terms.__dict__,
        "kek_id": wrapped.key_id,
        "kek_version": wrapped.version,
        "wrapped_key": _b64(wrapped.blob),
    }
    answer: dict[str, Any] = {"grant": base64.urlsafe_b64encode(_canonical(sealed)).decode()}
    if layout is None:
        answer |= {"url": blobs.presign_put(staged_key(terms.grant_id), expires_s), "method": "PUT"}
    else:
        first = range(1, min(layout.count, PARTS_PER_ANSWER) + 1)
        answer |= {
            "method": "multipart",
            "part_count": layout.count,
            "parts": part_urls(blobs, terms, list(first), expires_s),
        }
    return answer | {
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
    ) or time.time() > terms.deadline:
        raise NotFoundError(
            f"upload grant {terms.grant_id} does not exist (or expired)",
            hint=f"ask for a new grant: POST /api/v1/projects/{project}/upload-grants",
        )
    return terms, data_key


def _parts_of(blobs: PresigningBlobStore, terms: UploadTerms) -> MultipartBlobStore:
    parts = multipart(blobs)
    if not terms.upload_id or parts is None:
        raise InvalidInputError(
            f"upload grant {terms.grant_id} is for one PUT, not for parts",
            hint="PUT the encrypted file to the grant's url, then commit",
        )
    return parts


def part_urls(
    blobs: PresigningBlobStore, terms: UploadTerms, numbers: list[int], expires_s: int
) -> list[dict[str, Any]]:
    """Fresh presigned URLs for parts ``numbers`` of a grant in parts, each with where
    its plaintext lies in the file and its ciphertext size.

    Raises:
        InvalidInputError: a grant for one PUT, or a part it does not have.
    """
    parts = _parts_of(blobs, terms)
    key = staged_key(terms.grant_id)
    answers = []
    for number in numbers:
        entry: dict[str, Any] = dict(terms.layout.part(number))
        entry["url"] = parts.presign_part(key, terms.upload_id, number, expires_s)
        answers.append(entry)
    return answers


def abort_upload(blobs: PresigningBlobStore, terms: UploadTerms) -> None:
    """Drop whatever was sent for a grant: its parts, or its staged object."""
    parts = multipart(blobs)
    if terms.upload_id and parts is not None:
        parts.abort_multipart(staged_key(terms.grant_id), terms.upload_id)
    blobs.delete(staged_key(terms.grant_id))


def _complete_parts(blobs: PresigningBlobStore, terms: UploadTerms) -> None:
    """Complete a grant's multipart upload once S3 holds each of its parts, each of the
    size the layout gives; one completed before (a commit retried) is left as it is.

    Raises:
        InvalidInputError: parts are missing (the upload stays open: send them, then
            commit again).
        IntegrityError: a part of the wrong size, or one the layout has not; the upload
            is aborted and nothing is stored.
    """
    parts = _parts_of(blobs, terms)
    key = staged_key(terms.grant_id)
    try:
        held = parts.uploaded_parts(key, terms.upload_id)
    except NotFoundError:
        return  # completed by a commit before (or aborted: the size check finds nothing)
    layout = terms.layout
    sizes = {number: size for number, size, _, _ in held}
    missing = [n for n in range(1, layout.count + 1) if n not in sizes]
    wrong = [
        n for n, size in sorted(sizes.items()) if n > layout.count or layout.part(n)["size"] != size
    ]
    if wrong:
        parts.abort_multipart(key, terms.upload_id)
        raise IntegrityError(
            f"the upload for grant {terms.grant_id} has parts {wrong} that are not of the "
            "sizes the grant gives (each part's size is in its entry)",
            hint="encrypt each part with the grant's data_key and context as its entry "
            "says, then ask for a new grant; nothing was stored",
        )
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise InvalidInputError(
            f"the upload for grant {terms.grant_id} lacks {len(missing)} of its "
            f"{layout.count} parts: {shown}",
            hint="PUT them (fresh URLs: POST /api/v1/projects/{project}/upload-grants/parts), "
            "then commit again",
        )
    with contextlib.suppress(NotFoundError):  # completed meanwhile by a commit sent again
        parts.complete_multipart(
            key, terms.upload_id, [(n, etag) for n, _, etag, _ in sorted(held)]
        )


def commit_upload(
    store: EncryptedArtifactStore, blobs: PresigningBlobStore, terms: UploadTerms, data_key: bytes
) -> ArtifactInfo:
    """Take the staged body of a grant into the store if it decrypts to its digest.

    The object is first copied to its body key (the client's URL cannot write there),
    then verified there; a body that fails is deleted, and nothing else is written.
    Identical content stored already is kept, and the verified copy dropped. A grant in
    parts has its multipart upload completed first, once every part is there.

    Raises:
        NotFoundError: nothing was PUT for this grant (or it was committed already).
        AlreadyExistsError: another commit of this grant is verifying its body (the
            client sent it again when its answer was late); commit again later.
        InvalidInputError: parts of a grant in parts are missing; send them, then
            commit again.
        IntegrityError: the body is not the announced file; nothing is stored.
    """
    staged = staged_key(terms.grant_id)
    if terms.upload_id:
        _complete_parts(blobs, terms)
    try:
        found = blobs.size(staged)
    except NotFoundError as exc:
        if _sealed(store, terms):  # a commit sent again (its answer was lost): done
            return ArtifactInfo(digest=terms.digest, size=terms.size, region=store.region)
        if blobs.exists(store.body_key(terms.digest, terms.body_id)):
            raise AlreadyExistsError(
                f"upload grant {terms.grant_id} is being committed: its body is being "
                "verified (a commit sent before this one)",
                hint="commit again in a while for the answer; a large file takes about a "
                "second per 100 MiB",
            ) from exc
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
    # Two commits of one grant (a client's retry while the first still runs) share the
    # body key: neither may delete a body that the other sealed.
    try:
        _verify(blobs, body, terms, data_key)
    except BaseException:
        if not _sealed(store, terms):
            blobs.delete(body)
        raise
    if store.exists(terms.digest):
        if not _sealed(store, terms):
            blobs.delete(body)  # the bytes are proven; the copy held already serves them
        return ArtifactInfo(digest=terms.digest, size=terms.size, region=store.region)
    return store.seal(terms.digest, terms.size, terms.body_id, data_key)


def _sealed(store: EncryptedArtifactStore, terms: UploadTerms) -> bool:
    """Whether the store holds the grant's digest under the grant's own body."""
    return any(header.body_id == terms.body_id for header in store.headers(terms.digest))


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
