"""Erasure certificates: canonical JSON signed with the home's ECDSA key, and their check.

A certificate is ``{"certificate": BODY, "signature": BASE64, "key": FINGERPRINT}``; the
signature is ECDSA P-256 / SHA-256 over the canonical body (sorted keys, no spaces), and
``key`` names the public key (SHA-256 of its DER) in the home's trust store. The body's
SHA-256 is what the audit record of the erasure carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.security.homekeys import fingerprint, load_signing_key, public_key_path, trusted_keys
from ghaf.settings import GhafSettings

FORMAT = "ghaf-erasure-certificate/1"


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a certificate's signature and digest are over."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def body_digest(body: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical body: the audit record names the certificate by it."""
    return hashlib.sha256(canonical(body)).hexdigest()


def subject_reference(key_column: str, value: str) -> dict[str, str]:
    """How a certificate names its subject without keeping the erased value: a salted
    SHA-256 that whoever knows the value can check (:func:`matches_subject`)."""
    salt = secrets.token_hex(16)
    return {"key_column": key_column, "salt": salt, "value_sha256": _salted(salt, value)}


def matches_subject(reference: dict[str, Any], value: str) -> bool:
    """Whether ``value`` is the subject a certificate's reference names."""
    expected = str(reference.get("value_sha256", ""))
    return hmac.compare_digest(_salted(str(reference.get("salt", "")), value), expected)


def _salted(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


def sign_certificate(settings: GhafSettings, body: dict[str, Any]) -> dict[str, Any]:
    """The signed certificate document of ``body`` (signed with the home's key)."""
    key = load_signing_key(settings)
    signature = key.sign(canonical(body), ec.ECDSA(hashes.SHA256()))
    return {
        "certificate": body,
        "signature": base64.b64encode(signature).decode(),
        "key": fingerprint(public_key_path(settings).read_bytes()),
    }


def check_signature(settings: GhafSettings, document: dict[str, Any]) -> str:
    """Verify a certificate's signature against the trust store; returns the body digest.

    Raises:
        InvalidInputError: the document is not a certificate.
        IntegrityError: no trusted key verifies the signature (altered or foreign).
    """
    body = document.get("certificate")
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InvalidInputError(
            "the file is not an erasure certificate",
            hint=f"pass the JSON that `ghaf erase` wrote (format {FORMAT})",
        )
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
    except ValueError as exc:
        raise IntegrityError("the certificate's signature is not base64") from exc
    data = canonical(body)
    for path in trusted_keys(settings):
        public = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(public, ec.EllipticCurvePublicKey):
            continue
        try:
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return body_digest(body)
    raise IntegrityError(
        f"erasure certificate {body.get('id')} does not verify under any trusted key",
        hint="the certificate was altered, or it was signed by a home this one does not trust",
    )
