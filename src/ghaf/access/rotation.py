"""Key management operations: rotate the KEK (re-wrap headers only), destroy a version, trust.

A rotation re-wraps every artifact header and every encrypted prediction log file (a new
header in front of the same ciphertext, :func:`~ghaf.security.file_envelope.rewrap_file`)
under HOME/predictions and ``retention.prediction_log_dirs``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography.exceptions import UnsupportedAlgorithm

from ghaf.errors import ConfigError, GhafError, IntegrityError, NotFoundError
from ghaf.platform import Platform
from ghaf.security.base import VersionedKeyProvider
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.file_envelope import MAGIC, header_of, rewrap_file
from ghaf.security.homekeys import fingerprint, trust_public_key
from ghaf.security.identity import Actor
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.spine import current_operation, governed


@dataclass(frozen=True)
class RotationResult:
    """What a rotation did."""

    version: int
    artifacts: int
    rewrapped: int
    resumed: bool
    shredded: int = 0
    log_files: int = 0
    """Encrypted prediction log files seen."""
    log_rewrapped: int = 0
    log_unreadable: int = 0
    """Log files that do not unwrap here (their KEK version destroyed: crypto-shredded;
    or another home's, or altered), left as they are for retention."""


def encrypted_store(platform: Platform) -> EncryptedArtifactStore:
    """The platform's encrypted store; ``ConfigError`` when encryption is off."""
    store = platform.artifacts
    if not isinstance(store, EncryptedArtifactStore):
        raise ConfigError(
            "artifact encryption is off (security.encrypt_artifacts = false)",
            hint="turn it on to manage artifact keys",
        )
    return store


def managed_keys(platform: Platform) -> VersionedKeyProvider:
    """The KEK whose versions Ghaf manages (the home's key file, or AWS KMS); KEKs given
    in settings are rotated where they live."""
    keys = encrypted_store(platform).keys
    if not keys.supports_rotation:
        raise ConfigError(
            "the KEK comes from settings (security.kek), not from the home's key file or KMS",
            hint="rotate it where it is managed, then list both versions in GHAF_SECURITY__KEK",
        )
    return cast(VersionedKeyProvider, keys)


local_keys = managed_keys
"""The name :func:`managed_keys` had while the key file was the only managed KEK."""


@governed("keys.rotate", resource="kek:home", project=ALL_PROJECTS)
def rotate_keys(
    platform: Platform, actor: Actor, *, progress: Callable[[str], None] | None = None
) -> RotationResult:
    """Make a new KEK version current and re-wrap every artifact header with it.

    Resumable: a rotation that was interrupted (even by ``kill -9``) is finished
    by running it again, without making another version. Bodies are never
    rewritten, and every artifact stays readable throughout.
    """
    keys = managed_keys(platform)
    store = encrypted_store(platform)
    resumed = keys.rotation_pending() is not None
    version = keys.begin_rotation()
    total = rewrapped = shredded = 0
    for digest in list(store.digests()):
        try:
            rewrapped += store.rewrap(digest)
        except NotFoundError:  # its only KEK version was destroyed: nothing to re-wrap
            shredded += 1
        total += 1
        if progress is not None:
            progress(digest)
    logs = log_rewrapped = log_unreadable = 0
    for path in encrypted_log_files(platform):
        try:
            log_rewrapped += rewrap_file(path, keys)
        except (NotFoundError, IntegrityError):  # shredded, foreign or altered: left as is
            log_unreadable += 1
        except FileNotFoundError:  # removed meanwhile (retention, erasure)
            continue
        logs += 1
        if progress is not None:
            progress(str(path))
    keys.finish_rotation()
    current_operation().details.update(
        version=version,
        artifacts=total,
        rewrapped=rewrapped,
        resumed=resumed,
        shredded=shredded,
        log_files=logs,
        log_rewrapped=log_rewrapped,
        log_unreadable=log_unreadable,
    )
    return RotationResult(
        version, total, rewrapped, resumed, shredded, logs, log_rewrapped, log_unreadable
    )


def prediction_log_dirs(platform: Platform) -> list[Path]:
    """The prediction log directories keys cover: HOME/predictions and
    ``retention.prediction_log_dirs`` (those that exist)."""
    settings = platform.settings
    found: list[Path] = []
    for directory in [Path(settings.home) / "predictions", *settings.retention.prediction_log_dirs]:
        resolved = directory.expanduser().resolve()
        if resolved.is_dir() and resolved not in found:
            found.append(resolved)
    return found


def encrypted_log_files(platform: Platform) -> list[Path]:
    """The encrypted prediction log files of :func:`prediction_log_dirs`."""
    found = []
    for directory in prediction_log_dirs(platform):
        for path in sorted(directory.glob("*.parquet")):
            try:
                with path.open("rb") as handle:
                    if handle.read(len(MAGIC)) == MAGIC:
                        found.append(path)
            except (FileNotFoundError, IsADirectoryError):
                continue
    return found


@governed("keys.destroy_version", resource="kek:home/v{version}", project=ALL_PROJECTS)
def destroy_key_version(platform: Platform, actor: Actor, version: int) -> list[str]:
    """Delete a KEK version's key material; returns the artifacts that become unreadable.

    Those are the artifacts whose headers were never re-wrapped to a newer version:
    they are crypto-shredded (nothing can decrypt them any more).
    """
    keys = managed_keys(platform)
    store = encrypted_store(platform)
    shredded = [
        digest
        for digest in store.digests()
        if {h.wrapped.version for h in store.headers(digest)} == {version}
    ]
    logs = sum(_wrapped_by(path, version) for path in encrypted_log_files(platform))
    keys.destroy_version(version)
    current_operation().details.update(
        version=version, shredded=len(shredded), log_files_shredded=logs
    )
    return shredded


def _wrapped_by(path: Path, version: int) -> bool:
    try:
        return header_of(path).wrapped.version == version
    except (GhafError, FileNotFoundError):
        return False


def trust_key(platform: Platform, actor: Actor, public_key: bytes | Path) -> str:
    """Add a public key to the home's trust store; returns its fingerprint.

    Args:
        public_key: the PEM bytes (as a server receives them), or a PEM file to read.

    The audited resource is ``public_key:FINGERPRINT`` (never a temporary path); input
    that is not a public key is still authorized first, then refused.

    Raises:
        NotFoundError: the file cannot be read.
        InvalidInputError: not a PEM ECDSA public key.
    """
    pem = _read_pem(public_key) if isinstance(public_key, Path) else public_key
    return _trust_pem(platform, actor, pem, _key_name(pem))


def _read_pem(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NotFoundError(
            f"cannot read public key file {path}: {exc.strerror}",
            hint="pass the path of a PEM public key (e.g. another home's keys/signing.pub.pem)",
        ) from exc


def _key_name(pem: bytes) -> str:
    """The key's fingerprint, or (for bytes that are not a key) their SHA-256, marked so."""
    try:
        return fingerprint(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return f"not-a-key-sha256-{hashlib.sha256(pem).hexdigest()}"


@governed("keys.trust", resource="public_key:{name}", project=ALL_PROJECTS)
def _trust_pem(platform: Platform, actor: Actor, pem: bytes, name: str) -> str:
    trust_public_key(platform.settings, pem)  # refuses what is not an ECDSA public key
    current_operation().details["fingerprint"] = name
    return name
