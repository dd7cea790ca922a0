"""Contract test suites for Ghaf's backend kinds, for third-party backends to run too.

Subclass a suite in your tests and provide its fixture (see each suite's docstring).
"""

from ghaf.testing.artifact_store import ArtifactStoreContract
from ghaf.testing.artifacts import BlobStoreContract
from ghaf.testing.events import EventBusContract
from ghaf.testing.key_provider import KeyProviderContract, VersionedKeyProviderContract
from ghaf.testing.metadata import MetadataContract
from ghaf.testing.online_store import OnlineStoreContract

__all__ = [
    "ArtifactStoreContract",
    "BlobStoreContract",
    "EventBusContract",
    "KeyProviderContract",
    "MetadataContract",
    "OnlineStoreContract",
    "VersionedKeyProviderContract",
]
