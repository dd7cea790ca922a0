"""The artifact-store contract: plain and encrypted stores, on local disk and the S3 API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.artifacts.base import ArtifactStore, BlobStore
from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.s3 import S3BlobStore
from ghaf.artifacts.store import ContentStore
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.keys import LocalKeyProvider
from ghaf.testing import ArtifactStoreContract


def _blobs(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if kind == "local":
        return LocalBlobStore(tmp_path / "blobs", region="ae-auh-1")
    return S3BlobStore(
        f"s3://ghaf-{uuid.uuid4().hex[:8]}/artifacts",
        region="ae-dxb-1",
        endpoint_url=request.getfixturevalue("s3_endpoint"),
        storage_options={"key": "testing", "secret": "testing"},
    )


@pytest.fixture(params=["plain-local", "encrypted-local", "encrypted-s3"])
def artifact_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    mode, kind = request.param.split("-")
    blobs = _blobs(kind, request, tmp_path)
    if mode == "plain":
        yield ContentStore(blobs)
        return
    keys = LocalKeyProvider(tmp_path / "keys" / "kek.json")
    keys.create()
    yield EncryptedArtifactStore(blobs, keys, project="contract")


class TestArtifactStore(ArtifactStoreContract):
    pass
