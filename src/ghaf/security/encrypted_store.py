"""Encrypted content-addressed artifacts: C2SP chunked AES-256-GCM bodies, KEK-wrapped headers.

Layout on the blob store, for an artifact with plaintext SHA-256 ``d``:

- ``enc/<d[:2]>/<d>/<body_id>``: the ciphertext (c2sp.org/chunked-encryption),
  under a random per-artifact data key; ``body_id`` is random per write.
- ``hdr/<d[:2]>/<d>/<kek_id>.v<N>.json``: the small header: the data key wrapped by
  version ``N`` of the KEK, and the context (artifact, project, region, plaintext
  digest and size, body id) bound as associated data of the wrap.

Key rotation writes a header for the new version, then deletes the old one; bodies
are never rewritten, and at every instant some header can unwrap the key. The body
is committed before its header, so a crash leaves at most an unreferenced body.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ghaf.artifacts.base import CHUNK_SIZE, ArtifactInfo, BlobStore, LateClaim
from ghaf.artifacts.store import atomic_output, blob_key, check_expected
from ghaf.errors import GhafError, IntegrityError, NotFoundError
from ghaf.security.base import KeyProvider, WrappedKey
from ghaf.security.chunked import decrypt_stream, encrypt_stream, iter_decrypt

HEADER_FORMAT = "ghaf-enc/1"
CIPHER = "c2sp-chunked-encryption/AEAD_AES_256_GCM/SHA-512"


def _digest_dir(digest: str) -> str:
    blob_key(digest)  # validates the digest
    return f"{digest[:2]}/{digest}"


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Header:
    """An artifact's header: which body, the wrapped data key and the bound context."""

    key: str
    body_id: str
    wrapped: WrappedKey
    context: dict[str, Any]

    def to_bytes(self) -> bytes:
        return _canonical(
            {
                "format": HEADER_FORMAT,
                "body": self.body_id,
                "kek_id": self.wrapped.key_id,
                "kek_version": self.wrapped.version,
                "wrapped_key": base64.b64encode(self.wrapped.blob).decode(),
                "context": self.context,
            }
        )

    @classmethod
    def parse(cls, key: str, raw: bytes) -> Header:
        try:
            doc = orjson.loads(raw)
            if doc["format"] != HEADER_FORMAT:
                raise ValueError(doc["format"])
            wrapped = WrappedKey(
                str(doc["kek_id"]), int(doc["kek_version"]), base64.b64decode(doc["wrapped_key"])
            )
            return cls(key, str(doc["body"]), wrapped, dict(doc["context"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(
                f"artifact header {key} is malformed",
                hint="the header was altered; restore it from a replica",
            ) from exc

    @property
    def aad(self) -> bytes:
        """What the key wrap authenticates: the context and the body it belongs to."""
        return _canonical({"body": self.body_id, "context": self.context})


def body_context(body_id: str) -> bytes:
    """The chunked-encryption context of body ``body_id`` (binds the body to its id)."""
    return f"ghaf.artifact/1 body={body_id}".encode()


class _Source:
    """A ``readinto`` over any binary stream."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._readinto = getattr(source, "readinto", None)

    def readinto(self, view: memoryview) -> int:
        if self._readinto is not None:
            return int(self._readinto(view) or 0)
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)


class DecryptingReader(io.RawIOBase):
    """Plaintext of an encrypted body; checks the plaintext digest at the end."""

    def __init__(self, pieces: Iterator[memoryview], digest: str, *, verify: bool = True) -> None:
        self._pieces = pieces
        self._digest = digest
        self._hash = hashlib.sha256() if verify else None
        self._buffer = memoryview(b"")
        self._error: GhafError | None = None
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._error is not None:
            raise self._error  # keep failing if reads continue
        while not self._buffer:
            if self._done:
                return 0
            try:
                self._buffer = next(self._pieces)
                if self._hash is not None:
                    self._hash.update(self._buffer)
            except StopIteration:
                self._done = True
                if self._hash is not None and self._hash.hexdigest() != self._digest:
                    self._error = IntegrityError(
                        f"artifact {self._digest} decrypted to bytes with another digest",
                        hint="the stored artifact is corrupt; restore it from a replica",
                    )
                    raise self._error from None
                return 0
            except GhafError as exc:
                self._error = exc
                raise
        count = min(len(buffer), len(self._buffer))
        memoryview(buffer).cast("B")[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


class EncryptedArtifactStore:
    """The :class:`~ghaf.artifacts.base.ArtifactStore` protocol, encrypted at rest.

    Content addressing stays on the plaintext SHA-256, so deduplication and the
    digests other concerns keep are the same as with the plain store.
    """

    def __init__(self, blobs: BlobStore, keys: KeyProvider, *, project: str = "default") -> None:
        self.blobs = blobs
        self.keys = keys
        self.project = project
        self.region = blobs.region

    def for_project(self, project: str) -> EncryptedArtifactStore:
        """The same store writing ``project`` into the headers it seals (the blobs and keys
        are shared: a project's view of a server's store)."""
        return EncryptedArtifactStore(self.blobs, self.keys, project=project)

    # Writing -------------------------------------------------------------------------

    def put(
        self, source: BinaryIO | Path, *, expected: str | LateClaim | None = None
    ) -> ArtifactInfo:
        """Encrypt ``source`` as it streams in; identical content is stored once. With
        ``expected``, only bytes that hash to it are stored."""
        if isinstance(source, Path):
            with source.open("rb", buffering=0) as handle:
                return self.put(handle, expected=expected)
        self.keys.current_version()  # fail before streaming when the KEK is unavailable
        body_id = secrets.token_hex(8)
        data_key = os.urandom(32)
        hasher = hashlib.sha256()
        writer = self.blobs.begin_write()
        try:
            size = encrypt_stream(
                data_key,
                body_context(body_id),
                _Source(source).readinto,
                writer.write,
                on_plaintext=hasher.update,
            )
            digest = hasher.hexdigest()
            check_expected(digest, expected)
            if self.exists(digest):
                writer.abort()
                return ArtifactInfo(digest=digest, size=size, region=self.region)
            writer.commit(self.body_key(digest, body_id))
        except BaseException:
            writer.abort()
            raise
        return self.seal(digest, size, body_id, data_key)

    def seal(self, digest: str, size: int, body_id: str, data_key: bytes) -> ArtifactInfo:
        """Write the header that makes the committed body ``body_id`` the artifact
        ``digest``: its data key wrapped by the KEK, bound to project and region.

        Only for a body known to decrypt to ``digest`` (written by :meth:`put`, or
        verified by :func:`~ghaf.security.grants.commit_upload`)."""
        context = {
            "artifact": f"sha256:{digest}",
            "cipher": CIPHER,
            "plaintext_sha256": digest,
            "project": self.project,
            "region": self.region,
            "size": size,
        }
        aad = _canonical({"body": body_id, "context": context})
        header = Header("", body_id, self.keys.wrap(data_key, aad), context)
        self._write_header(digest, header)
        return ArtifactInfo(digest=digest, size=size, region=self.region)

    @staticmethod
    def body_key(digest: str, body_id: str) -> str:
        """Where the body ``body_id`` of ``digest`` lives on the blob store."""
        return f"enc/{_digest_dir(digest)}/{body_id}"

    def put_bytes(self, data: bytes) -> ArtifactInfo:
        return self.put(io.BytesIO(data))

    def _write_header(self, digest: str, header: Header) -> str:
        wrapped = header.wrapped
        key = f"hdr/{_digest_dir(digest)}/{wrapped.key_id}.v{wrapped.version}.json"
        writer = self.blobs.begin_write()
        try:
            writer.write(header.to_bytes())
            writer.commit(key)
        except BaseException:
            writer.abort()
            raise
        return key

    # Reading -------------------------------------------------------------------------

    def headers(self, digest: str) -> list[Header]:
        """The artifact's headers, newest KEK version first."""
        found = []
        for key in self.blobs.keys(f"hdr/{_digest_dir(digest)}/"):
            with self.blobs.open_read(key) as handle:
                found.append(Header.parse(key, handle.read()))
        return sorted(found, key=lambda header: header.wrapped.version, reverse=True)

    def unlock(self, digest: str) -> tuple[str, bytes, Header]:
        """The body key, data key and header of ``digest`` (for a presigned download:
        the server hands out this one artifact's key, never the KEK).

        Raises:
            NotFoundError: no such artifact.
            IntegrityError: no header of it unwraps here.
        """
        return self._unlock(digest)

    def _unlock(self, digest: str) -> tuple[str, bytes, Header]:
        """The body key and data key of ``digest``, from the first header that unwraps."""
        headers = self.headers(digest)
        if not headers:
            raise NotFoundError(f"artifact {digest} does not exist")
        failure: GhafError | None = None
        for header in headers:
            context = header.context
            if context.get("plaintext_sha256") != digest or context.get("cipher") != CIPHER:
                failure = IntegrityError(
                    f"artifact header {header.key} belongs to another artifact",
                    hint="a header was copied or altered; restore it from a replica",
                )
                continue
            if context.get("region") != self.region:
                failure = IntegrityError(
                    f"artifact {digest} was encrypted for region {context.get('region')!r}, "
                    f"but this store is in region {self.region!r}",
                    hint="read it through a store configured for its region",
                )
                continue
            try:
                data_key = self.keys.unwrap(header.wrapped, header.aad)
            except GhafError as exc:
                failure = exc
                continue
            return f"enc/{_digest_dir(digest)}/{header.body_id}", data_key, header
        if failure is None:  # pragma: no cover - the loop ran at least once
            raise NotFoundError(f"artifact {digest} does not exist")
        if isinstance(failure, NotFoundError):
            raise NotFoundError(
                f"artifact {digest} cannot be decrypted: {failure.headline}", hint=failure.hint
            ) from failure
        raise IntegrityError(
            f"artifact {digest} cannot be decrypted: {failure.headline}", hint=failure.hint
        ) from failure

    @contextlib.contextmanager
    def open(self, digest: str, *, verify: bool = True) -> Iterator[BinaryIO]:
        """A decrypting, verifying reader; read to the end to have the digest checked
        (``verify=False``: the AEAD tags alone, for a consumer that checks the digest)."""
        body_key, data_key, header = self._unlock(digest)
        with self.blobs.open_read(body_key) as raw:
            pieces = iter_decrypt(data_key, body_context(header.body_id), _Source(raw).readinto)
            yield io.BufferedReader(DecryptingReader(pieces, digest, verify=verify), CHUNK_SIZE)

    def get(self, digest: str, dest: Path) -> ArtifactInfo:
        """Decrypt to a temporary file beside ``dest``; rename only once everything verified."""
        body_key, data_key, header = self._unlock(digest)
        hasher = hashlib.sha256()
        with atomic_output(dest) as out, self.blobs.open_read(body_key) as raw:
            size = decrypt_stream(
                data_key,
                body_context(header.body_id),
                _Source(raw).readinto,
                _hashing_writer(out, hasher),
            )
            if hasher.hexdigest() != digest:
                raise IntegrityError(
                    f"artifact {digest} decrypted to bytes with another digest",
                    hint="the stored artifact is corrupt; restore it from a replica",
                )
        return ArtifactInfo(digest=digest, size=size, region=self.region)

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as handle:
            return handle.read()

    def exists(self, digest: str) -> bool:
        return next(iter(self.blobs.keys(f"hdr/{_digest_dir(digest)}/")), None) is not None

    def delete(self, digest: str) -> None:
        """Delete headers first (the key goes), then bodies."""
        for prefix in ("hdr", "enc"):
            for key in list(self.blobs.keys(f"{prefix}/{_digest_dir(digest)}/")):
                self.blobs.delete(key)

    def digests(self) -> Iterator[str]:
        last = None
        for key in self.blobs.keys("hdr/"):
            digest = key.split("/")[2]
            if digest != last:
                last = digest
                yield digest

    # Key rotation --------------------------------------------------------------------

    def rewrap(self, digest: str) -> bool:
        """Wrap ``digest``'s data key with the current KEK version; True if it changed.

        The new header is committed before the old ones are deleted, so a crash at
        any point leaves a header that unwraps.
        """
        current = self.keys.current_version()
        headers = self.headers(digest)
        if not headers:
            raise NotFoundError(f"artifact {digest} does not exist")
        best = headers[0]
        changed = False
        if best.wrapped.version != current or best.wrapped.key_id != self.keys.key_id:
            _, _, best = self._unlock(digest)
            wrapped = self.keys.rewrap(best.wrapped, best.aad)
            self._write_header(digest, Header("", best.body_id, wrapped, best.context))
            changed = True
        keep = f"{self.keys.key_id}.v{current}.json"
        for header in headers:
            if not header.key.endswith("/" + keep):
                self.blobs.delete(header.key)
                changed = True
        return changed


def _hashing_writer(out: BinaryIO, hasher: Any) -> Callable[[memoryview], None]:
    def write(view: memoryview) -> None:
        hasher.update(view)
        while view:
            written = out.write(view)
            view = view[written or 0 :]

    return write
