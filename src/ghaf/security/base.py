"""Key-provider interface: wrap and unwrap per-artifact data keys with a versioned KEK.

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
from typing import Protocol


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under one version of a key-encryption key."""

    key_id: str
    version: int
    blob: bytes


class KeyProvider(Protocol):
    """A versioned key-encryption key (KEK) that wraps data keys, bound to a context.

    Implementations: :class:`~ghaf.security.keys.LocalKeyProvider` (key file in the
    home) and :class:`~ghaf.security.keys.StaticKeyProvider` (KEK from settings).
    """

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
