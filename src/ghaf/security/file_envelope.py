"""Encrypted files at rest: one self-contained envelope per file (the prediction log's).

A file is ``MAGIC || u32 header length || header JSON || body``. The body is the file's
plaintext under C2SP chunked encryption (:mod:`ghaf.security.chunked`, the artifacts'
construction) with a random 256-bit data key per file; the header names the KEK and its
version, carries the data key wrapped by it, and binds what the file is (kind, cipher,
body id, plaintext size) as associated data of the wrap. Rotation (:func:`rewrap_file`)
writes a new header in front of the same ciphertext bytes and renames it over the file
(its modification time kept); destroying a KEK version leaves files never re-wrapped
unreadable (crypto-shredding). Nothing here writes plaintext to disk: callers seal bytes
they hold in memory.

Why not Parquet Modular Encryption (``pyarrow.parquet.encryption``)? It was the first
choice and was tried: a ``KmsClient`` can carry the KEK version inside the wrapped key
string, but (1) rotation (``CryptoFactory.rotate_master_keys``) needs *external* key
material, a ``_KEY_MATERIAL_FOR_<name>.json`` beside each file that pyarrow writes when
the encryption properties are made, before the data file exists and outside the one
atomic rename the sink, erasure and retention rely on (an erasure rewrite replaces the
key material of the file it has not yet replaced; a crash between the two leaves a file
whose keys are gone, a delete leaves orphans); with internal key material a rotation
re-encrypts every file; (2) ``wrap_key``/``unwrap_key`` take no context, so a wrapped
key cannot be bound to what it protects; (3) double wrapping caches KEKs wrapped by the
old version past a rotation, so files written just after it would be shredded with the
old version. One file per envelope keeps every writer's single rename, reads the KEK
version without decrypting, and re-wraps without touching the body.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ghaf.errors import GhafError, IntegrityError, NotFoundError
from ghaf.security.base import KeyProvider, WrappedKey
from ghaf.security.chunked import decrypt_bytes, encrypt_bytes

MAGIC = b"GHAFENC\x01"
"""How an enveloped file starts (a Parquet file starts with ``PAR1``)."""
FORMAT = "ghaf-file/1"
CIPHER = "c2sp-chunked-encryption/AEAD_AES_256_GCM/SHA-512"
_LENGTH = struct.Struct(">I")
_MAX_HEADER = 64 * 1024


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class FileHeader:
    """An enveloped file's header: what it holds, and its data key wrapped by a KEK."""

    kind: str
    body_id: str
    wrapped: WrappedKey
    size: int

    @property
    def context(self) -> dict[str, Any]:
        return {"cipher": CIPHER, "kind": self.kind, "size": self.size}

    @property
    def aad(self) -> bytes:
        """What the key wrap authenticates: the body it opens and the bound context."""
        return _canonical({"body": self.body_id, "context": self.context, "format": FORMAT})

    @property
    def body_context(self) -> bytes:
        """The chunked-encryption context of the body (binds it to its kind and id)."""
        return f"{FORMAT} kind={self.kind} body={self.body_id}".encode()

    def to_bytes(self) -> bytes:
        doc = _canonical(
            {
                "format": FORMAT,
                "body": self.body_id,
                "context": self.context,
                "kek_id": self.wrapped.key_id,
                "kek_version": self.wrapped.version,
                "wrapped_key": base64.b64encode(self.wrapped.blob).decode(),
            }
        )
        return MAGIC + _LENGTH.pack(len(doc)) + doc


def is_enveloped(head: bytes) -> bool:
    """Whether a file's first bytes are an envelope's."""
    return head[: len(MAGIC)] == MAGIC


def seal(plaintext: bytes | memoryview, keys: KeyProvider, *, kind: str) -> bytes:
    """The enveloped form of ``plaintext``: a fresh data key, wrapped by the current KEK."""
    data_key = os.urandom(32)
    view = memoryview(plaintext).cast("B")
    header = FileHeader(kind, secrets.token_hex(8), WrappedKey("", 0, b""), len(view))
    header = FileHeader(kind, header.body_id, keys.wrap(data_key, header.aad), len(view))
    return b"".join((header.to_bytes(), encrypt_bytes(data_key, header.body_context, view)))


def read_header(raw: io.BufferedIOBase | Any, name: str) -> FileHeader:
    """Parse the header at the start of ``raw`` (a binary stream), leaving it at the body.

    Raises:
        IntegrityError: not an envelope, or its header is malformed (names ``name``).
    """
    lead = raw.read(len(MAGIC) + _LENGTH.size)
    if not is_enveloped(lead) or len(lead) < len(MAGIC) + _LENGTH.size:
        raise IntegrityError(f"{name} is not an encrypted Ghaf file", hint="it was replaced")
    (length,) = _LENGTH.unpack(lead[len(MAGIC) :])
    try:
        if length > _MAX_HEADER:
            raise ValueError(length)
        doc = orjson.loads(raw.read(length))
        if doc["format"] != FORMAT or doc["context"]["cipher"] != CIPHER:
            raise ValueError(doc["format"])
        wrapped = WrappedKey(
            str(doc["kek_id"]), int(doc["kek_version"]), base64.b64decode(doc["wrapped_key"])
        )
        context = doc["context"]
        return FileHeader(str(context["kind"]), str(doc["body"]), wrapped, int(context["size"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(
            f"{name}: its encryption header is malformed",
            hint="the file was altered; restore it from a backup",
        ) from exc


def header_of(path: Path) -> FileHeader:
    """The header of the enveloped file at ``path`` (reads only the header)."""
    with path.open("rb") as handle:
        return read_header(handle, str(path))


def unseal(raw: bytes | memoryview, keys: KeyProvider, *, name: str, kind: str) -> bytearray:
    """The plaintext of an enveloped file's bytes, every chunk authenticated.

    Raises:
        IntegrityError: the header does not unwrap under this home's KEK (another key,
            a destroyed version: crypto-shredded) or the body does not authenticate
            (tampered, truncated); the message names ``name``.
    """
    stream = io.BytesIO(raw)
    header = read_header(stream, name)
    if header.kind != kind:
        raise IntegrityError(f"{name} holds {header.kind!r}, not {kind!r}", hint="it was moved")
    try:
        data_key = keys.unwrap(header.wrapped, header.aad)
        plain = decrypt_bytes(data_key, header.body_context, memoryview(raw)[stream.tell() :])
    except (IntegrityError, NotFoundError) as exc:
        raise IntegrityError(f"{name} cannot be decrypted: {exc.headline}", hint=exc.hint) from exc
    if len(plain) != header.size:
        raise IntegrityError(f"{name} decrypted to {len(plain)} bytes, not {header.size}")
    return plain


def rewrap_file(path: Path, keys: KeyProvider) -> bool:
    """Wrap the data key of the enveloped file at ``path`` with the current KEK version;
    True if it changed. The body's bytes are copied as they are, the new file renamed
    over the old one (a reader sees one or the other) with the old modification time.

    Raises:
        NotFoundError: its KEK version was destroyed (the file is crypto-shredded).
        IntegrityError: its header does not unwrap (altered, or another home's KEK).
    """
    with path.open("rb") as handle:
        header = read_header(handle, str(path))
        if header.wrapped.version == keys.current_version() and (
            header.wrapped.key_id == keys.key_id
        ):
            return False
        try:
            wrapped = keys.rewrap(header.wrapped, header.aad)
        except GhafError as exc:
            if isinstance(exc, NotFoundError):
                raise NotFoundError(f"{path} cannot be re-wrapped: {exc.headline}") from exc
            raise IntegrityError(f"{path} cannot be re-wrapped: {exc.headline}") from exc
        stat = os.fstat(handle.fileno())
        partial = path.with_name(f".{path.name}.rewrap")
        try:
            with partial.open("wb") as out:
                out.write(FileHeader(header.kind, header.body_id, wrapped, header.size).to_bytes())
                while block := handle.read(1 << 20):
                    out.write(block)
            partial.chmod(stat.st_mode & 0o777)
            os.utime(partial, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            if path.stat().st_ino != stat.st_ino:  # erased or rewritten meanwhile: keep that
                partial.unlink()
                return False
            partial.replace(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return True
