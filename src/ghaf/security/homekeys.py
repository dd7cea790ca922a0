"""The home's keys: the KEK's first version and signing key (made by ``ghaf init``), trust store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ghaf.errors import ConfigError, InvalidInputError
from ghaf.security.base import KeyProvider, VersionedKeyProvider
from ghaf.security.keys import write_private_file
from ghaf.settings import GhafSettings


def keys_dir(settings: GhafSettings) -> Path:
    return settings.home / "keys"


def signing_key_path(settings: GhafSettings) -> Path:
    """The home's private signing key (PEM, PKCS#8, mode 0600)."""
    return keys_dir(settings) / "signing.pem"


def public_key_path(settings: GhafSettings) -> Path:
    return keys_dir(settings) / "signing.pub.pem"


def trust_dir(settings: GhafSettings) -> Path:
    """Public keys whose signatures this home accepts, one PEM file each."""
    return keys_dir(settings) / "trusted"


def fingerprint(public_pem: bytes) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, hex: a stable name for a public key."""
    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def ensure_signing_key(settings: GhafSettings) -> bool:
    """Create the signing key pair and trust its public half, if missing; True if created."""
    path = signing_key_path(settings)
    if path.exists():
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_private_file(path, private_pem)
    public_key_path(settings).write_bytes(public_pem)
    trust_public_key(settings, public_pem)
    return True


def load_signing_key(settings: GhafSettings) -> ec.EllipticCurvePrivateKey:
    """The home's private signing key; ``ConfigError`` if ``ghaf init`` has not made it."""
    path = signing_key_path(settings)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no signing key at {path}", hint="run `ghaf init` to create the home's keys"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"signing key {path} is not an ECDSA key")
    return key


def trust_public_key(settings: GhafSettings, public_pem: bytes) -> Path:
    """Add an ECDSA public key (PEM) to the trust store; returns its file."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError as exc:
        raise InvalidInputError(
            "the public key is not a PEM SubjectPublicKeyInfo",
            hint="pass the .pub.pem file of an ECDSA P-256/384/521 key",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidInputError(
            "only ECDSA public keys can be trusted", hint="model-signing verifies ECDSA keys only"
        )
    target = trust_dir(settings) / f"{fingerprint(public_pem)[:16]}.pem"
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_bytes(public_pem)
    return target


def trusted_keys(settings: GhafSettings) -> list[Path]:
    """The trust store's public key files."""
    folder = trust_dir(settings)
    return sorted(folder.glob("*.pem")) if folder.is_dir() else []


def init_keys(settings: GhafSettings, keys: KeyProvider) -> None:
    """``ghaf init`` step: the KEK's first version (the key file, or a KMS key; nothing
    for a KEK given in settings) and the signing key."""
    if keys.supports_rotation:
        cast(VersionedKeyProvider, keys).create()
    ensure_signing_key(settings)
