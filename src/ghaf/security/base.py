"""Key-provider interface: wrap and unwrap per-artifact data keys with a versioned KEK.

Implementations (chosen in :func:`ghaf.backends.open_key_provider` from ``keys.provider``):
:class:`~ghaf.security.keys.LocalKeyProvider` (the home's key file),
:class:`~ghaf.security.keys.StaticKeyProvider` (a KEK given in settings) and
:class:`~ghaf.security.kms.KmsKeyProvider` (AWS KMS). The first and last manage their
versions (:class:`VersionedKeyProvider`: ``ghaf keys rotate`` and ``destroy-version``);
``ghaf.testing.KeyProviderContract`` is the behaviour every provider shows.

How external key services fit :class:`KeyProvider`:

- HashiCorp Vault Transit: ``key_id`` is the transit key name; ``wrap`` is
  ``POST transit/encrypt/<name>`` (or ``transit/datakey/plaintext/<name>``, which
  also generates the data key) with ``associated_data`` = the context; the
  returned ``vault:vN:...`` ciphertext is ``WrappedKey.blob`` and ``N`` its
  version; ``unwrap`` is ``transit/decrypt``; ``rewrap`` is ``transit/rewrap``
  (the data key never leaves Vault); ``transit/keys/<name>/rotate`` makes a new
  version and ``min_decryption_version`` + ``trim`` crypto-shreds old ones.
- AWS KMS / GCP Cloud KMS / Azure Key Vault: ``wrap`` is ``Encrypt`` (or
  ``GenerateDataKey``) with the context as ``EncryptionContext`` /
  additional authenticated data; ``unwrap`` is ``Decrypt``; ``rewrap`` is
  ``ReEncrypt`` (AWS) or decrypt + encrypt; key versions are the service's
  (automatic rotation), and scheduling a version's destruction shreds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under one version of a key-encryption key."""

    key_id: str
    version: int
    blob: bytes


class KeyProvider(Protocol):
    """A versioned key-encryption key (KEK) that wraps data keys, bound to a context.

    Implementations: :class:`~ghaf.security.keys.LocalKeyProvider` (key file in the
    home), :class:`~ghaf.security.keys.StaticKeyProvider` (KEK from settings) and
    :class:`~ghaf.security.kms.KmsKeyProvider` (AWS KMS).
    """

    supports_rotation: ClassVar[bool]
    """Whether Ghaf makes and destroys its versions (it is a :class:`VersionedKeyProvider`);
    False where versions are managed elsewhere (a KEK given in settings)."""

    @property
    def key_id(self) -> str:
        """A stable name of the KEK (all its versions share it)."""
        ...

    def current_version(self) -> int:
        """The version new data keys are wrapped with."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the current version, binding ``context``."""
        ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """Decrypt a wrapped data key; raises ``IntegrityError`` or ``NotFoundError``."""
        ...

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        """Re-encrypt under the current version (Vault/KMS do it without exposing the key)."""
        ...


class VersionedKeyProvider(KeyProvider, Protocol):
    """A KEK whose versions Ghaf makes and destroys (``supports_rotation`` is True).

    A rotation is ``begin_rotation`` (a new version, current at once), re-wrapping every
    header, then ``finish_rotation``; ``begin_rotation`` after an interruption returns
    the version the unfinished rotation made instead of making another, so a rotation
    killed at any point is finished by running it again.
    """

    def create(self) -> bool:
        """Make version 1 if the KEK does not exist yet; True if anything was made."""
        ...

    def versions(self) -> dict[int, str]:
        """Every version ever made: ``"live"``, or ``"destroyed ..."`` with when or how."""
        ...

    def rotation_pending(self) -> int | None:
        """The version an unfinished rotation was re-wrapping to, if any."""
        ...

    def begin_rotation(self) -> int:
        """Make a new version current, or return the one an unfinished rotation made."""
        ...

    def finish_rotation(self) -> None:
        """Mark the rotation finished (every header re-wrapped)."""
        ...

    def destroy_version(self, version: int) -> None:
        """Make ``version`` unusable for ever (crypto-shredding what only it wraps).

        Raises:
            NotFoundError: no live version ``version``.
            InvalidInputError: it is the current version.
        """
        ...
