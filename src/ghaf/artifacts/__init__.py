"""Content-addressed, streamed, verified artifact storage on local disk or S3."""

from ghaf.artifacts.base import ArtifactInfo, ArtifactStore, BlobStore
from ghaf.artifacts.store import ContentStore

__all__ = ["ArtifactInfo", "ArtifactStore", "BlobStore", "ContentStore"]
