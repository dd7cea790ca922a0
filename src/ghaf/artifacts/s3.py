"""S3-compatible blob backend (AWS, MinIO, Ceph) through fsspec/s3fs.

Writes go to ``<prefix>/.tmp/<uuid>`` and are copied to their key on commit, so a
crashed writer leaves nothing under a content key.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from ghaf.errors import BackendUnavailableError, MissingDependencyError, NotFoundError


class _S3Writer:
    def __init__(self, fs: Any, base: str) -> None:
        self._fs = fs
        self._tmp = f"{base}/.tmp/{uuid.uuid4().hex}"
        self._base = base
        self._file = fs.open(self._tmp, "wb", block_size=16 * 1024 * 1024)

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self, key: str) -> None:
        self._file.close()
        final = f"{self._base}/{key}"
        try:
            if not self._fs.exists(final):
                self._fs.copy(self._tmp, final)
        finally:
            self._fs.rm(self._tmp)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.discard()  # aborts the multipart upload
        # fsspec's __del__ would otherwise try to flush the discarded buffer.
        self._file.closed = True
        with contextlib.suppress(Exception):
            self._fs.rm(self._tmp)


class S3BlobStore:
    """Blobs as objects under ``s3://bucket/prefix``."""

    def __init__(
        self,
        url: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            import s3fs
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("s3fs", "s3") from exc
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        self.url = url.rstrip("/")
        self.region = region
        options = dict(storage_options or {})
        if endpoint_url:
            options.setdefault("endpoint_url", endpoint_url)
        self._fs = s3fs.S3FileSystem(**options)
        self._base = self.url.removeprefix("s3://")
        try:
            bucket = self._base.split("/", 1)[0]
            if not self._fs.exists(bucket):
                self._fs.mkdir(bucket)
        except Exception as exc:
            raise BackendUnavailableError(
                f"cannot reach the S3 store {self.url}: {exc}",
                hint="check s3_endpoint_url and the credentials in the environment",
            ) from exc

    def begin_write(self) -> _S3Writer:
        return _S3Writer(self._fs, self._base)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = self._fs.open(f"{self._base}/{key}", "rb", block_size=8 * 1024 * 1024)
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {key} does not exist in {self.url}") from exc
        with handle:
            yield handle

    def exists(self, key: str) -> bool:
        return bool(self._fs.exists(f"{self._base}/{key}"))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(f"{self._base}/{key}")

    def keys(self, prefix: str = "") -> Iterator[str]:
        root = f"{self._base}/{prefix}".rstrip("/")
        try:
            found = self._fs.find(root)
        except FileNotFoundError:
            return
        for path in sorted(found):
            relative = path.removeprefix(self._base + "/")
            if not relative.startswith(".tmp/"):
                yield relative
