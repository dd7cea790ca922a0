"""The blob-store contract on every backend: local directory and the S3 API (moto emulator)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghaf.artifacts.base import BlobStore
from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.s3 import S3BlobStore
from ghaf.testing import BlobStoreContract


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs", region="ae-auh-1")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    yield S3BlobStore(
        f"s3://ghaf-{uuid.uuid4().hex[:8]}/artifacts",
        region="ae-dxb-1",
        endpoint_url=endpoint,
        storage_options={"key": "testing", "secret": "testing"},
    )


class TestBlobStore(BlobStoreContract):
    pass
