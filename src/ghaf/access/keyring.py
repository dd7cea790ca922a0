"""What the home's keys are, never their material: KEK versions and trusted public keys."""

from __future__ import annotations

from dataclasses import dataclass

from ghaf.access.rotation import managed_keys
from ghaf.platform import Platform
from ghaf.security.homekeys import fingerprint, public_key_path, trusted_keys


@dataclass(frozen=True)
class KeyVersion:
    """One KEK version: ``live`` or ``destroyed <time>``, and whether it is current."""

    version: int
    state: str
    current: bool


@dataclass(frozen=True)
class TrustedKey:
    """A public key whose model signatures the home accepts."""

    name: str
    """The first 16 hex digits of its fingerprint (its file's name in the trust store)."""
    file: str
    """Its file in the trust store, relative to the keys directory."""
    this_home: bool
    """Whether it is the home's own signing key."""


@dataclass(frozen=True)
class Keyring:
    """The KEK's versions, an unfinished rotation, and the trust store."""

    kek: str
    versions: tuple[KeyVersion, ...]
    rotation_pending: int | None
    trusted: tuple[TrustedKey, ...]


def describe_keys(platform: Platform) -> Keyring:
    """The home's keys as ``ghaf keys list`` shows them (no key material).

    Raises:
        ConfigError: artifact encryption is off, or the KEK comes from settings
            (``security.kek``).
    """
    keys = managed_keys(platform)
    current = keys.current_version()
    versions = tuple(
        KeyVersion(version, state, version == current) for version, state in keys.versions().items()
    )
    own = public_key_path(platform.settings)
    mine = fingerprint(own.read_bytes())[:16] if own.exists() else None
    trusted = tuple(
        TrustedKey(path.stem, f"{path.parent.name}/{path.name}", path.stem == mine)
        for path in trusted_keys(platform.settings)
    )
    return Keyring(keys.key_id, versions, keys.rotation_pending(), trusted)
