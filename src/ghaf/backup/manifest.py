"""A backup's manifest: what it holds, the SHA-256 of every file, signed by the home's key.

The home's signing key travels in the backup sealed under the KEK (a random data key,
AES-256-GCM, wrapped by the key provider as an artifact's is), never in clear. The
manifest is signed with it, so a restore that can unseal the key (it holds the KEK) and
finds the signature valid knows that the manifest, and through its digests every file,
is what the home wrote: nobody without the KEK can make a backup that passes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ghaf.errors import GhafError, IntegrityError
from ghaf.security.base import KeyProvider, WrappedKey
from ghaf.security.homekeys import fingerprint

FORMAT = "ghaf-backup/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SEALED_KEY = "keys/signing.pem.sealed"
SEAL_FORMAT = "ghaf-backup-sealed-key/1"


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup: its SHA-256 and size."""

    sha256: str
    size: int


def _seal_context(backup_id: str, public_fingerprint: str) -> bytes:
    return orjson.dumps(
        {"backup": backup_id, "public_key": public_fingerprint, "purpose": "ghaf-backup/signing"},
        option=orjson.OPT_SORT_KEYS,
    )


def seal_signing_key(
    keys: KeyProvider, private_pem: bytes, backup_id: str, public_fingerprint: str
) -> bytes:
    """The signing key encrypted under a fresh data key, the data key wrapped by the KEK."""
    data_key = os.urandom(32)
    nonce = os.urandom(12)
    context = _seal_context(backup_id, public_fingerprint)
    wrapped = keys.wrap(data_key, context)
    body = nonce + AESGCM(data_key).encrypt(nonce, private_pem, context)
    return canonical(
        {
            "format": SEAL_FORMAT,
            "kek_id": wrapped.key_id,
            "kek_version": wrapped.version,
            "wrapped_key": base64.b64encode(wrapped.blob).decode(),
            "sealed": base64.b64encode(body).decode(),
        }
    )


def unseal_signing_key(
    keys: KeyProvider, sealed: bytes, backup_id: str, public_fingerprint: str
) -> ec.EllipticCurvePrivateKey:
    """The backup's signing key, once the KEK unwraps it and it matches the manifest.

    Raises:
        IntegrityError: the sealed key is malformed or altered, or is not the key whose
            fingerprint the manifest names.
        NotFoundError: the KEK version it was wrapped with is not available here.
    """
    context = _seal_context(backup_id, public_fingerprint)
    try:
        doc = orjson.loads(sealed)
        if doc["format"] != SEAL_FORMAT:
            raise ValueError(doc["format"])
        wrapped = WrappedKey(
            str(doc["kek_id"]), int(doc["kek_version"]), base64.b64decode(doc["wrapped_key"])
        )
        body = base64.b64decode(doc["sealed"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(
            f"{SEALED_KEY} of the backup is malformed",
            hint="the backup is damaged; restore from another backup",
        ) from exc
    try:
        data_key = keys.unwrap(wrapped, context)
    except GhafError as exc:
        raise type(exc)(
            f"the backup's signing key cannot be unsealed with this KEK: {exc.headline}",
            hint=exc.hint or "restore with the KEK the home used (--kek-file, or its KMS settings)",
        ) from exc
    try:
        pem = AESGCM(data_key).decrypt(body[:12], body[12:], context)
    except InvalidTag as exc:
        raise IntegrityError(
            f"{SEALED_KEY} of the backup was altered", hint="restore from another backup"
        ) from exc
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or public_fingerprint != fingerprint(
        public_pem(key)
    ):
        raise IntegrityError(
            f"{SEALED_KEY} is not the key the manifest names ({public_fingerprint[:16]})",
            hint="the backup is damaged or was assembled from two backups",
        )
    return key


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: ec.EllipticCurvePrivateKey, manifest: bytes) -> bytes:
    return base64.b64encode(key.sign(manifest, ec.ECDSA(hashes.SHA256()))) + b"\n"


def check_signature(key: ec.EllipticCurvePrivateKey, manifest: bytes, signature: bytes) -> None:
    """Raises:
    IntegrityError: the manifest is not the one the home's key signed."""
    try:
        key.public_key().verify(
            base64.b64decode(signature.strip(), validate=True),
            manifest,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError) as exc:
        raise IntegrityError(
            f"{MANIFEST} of the backup does not match its signature ({SIGNATURE})",
            hint="the manifest was altered; restore from another backup",
        ) from exc


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest's document.

    Raises:
        IntegrityError: not a manifest of this format.
    """
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("format")
        for key in ("id", "files", "metadata", "kek", "signing", "home", "artifacts"):
            doc[key]  # a missing section is a malformed manifest
    except (ValueError, KeyError) as exc:
        raise IntegrityError(
            f"{MANIFEST} is not a Ghaf backup manifest ({FORMAT})",
            hint="point at the folder or s3:// prefix `ghaf backup` wrote",
        ) from exc
    return doc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
