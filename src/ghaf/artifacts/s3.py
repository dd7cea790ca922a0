"""S3-compatible blob backend (AWS, MinIO, Ceph) through fsspec/s3fs.

Writes go to ``<prefix>/.tmp/<uuid>`` and are copied to their key on commit, so a
crashed writer leaves nothing under a content key.

The region in settings is a claim: at open the store asks the bucket where it lives
(``GetBucketLocation``) and refuses to work when the answer differs, so residency
decisions rest on where the bytes really go. A bucket it creates is created in the
configured region.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from ghaf.errors import (
    BackendUnavailableError,
    ConfigError,
    MissingDependencyError,
    NotFoundError,
)

_LOCATIONS: dict[tuple[str, str], str] = {}
"""Where each bucket was found to live, by (endpoint, bucket): asked once per process."""
_LOCATIONS_LOCK = threading.Lock()

_LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}
"""GetBucketLocation answers that name a region indirectly (S3's documented legacy values)."""


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
        # Presigned URLs in SigV4: regions opened since 2014 (the UAE's among them) refuse
        # the SigV2 that botocore would otherwise sign them with.
        options["config_kwargs"] = {"signature_version": "s3v4", **options.get("config_kwargs", {})}
        self._fs = s3fs.S3FileSystem(**options)
        self._base = self.url.removeprefix("s3://")
        bucket = self._base.split("/", 1)[0]
        endpoint = options.get("endpoint_url")
        true_region = bucket_region(self._fs, bucket, create_in=region, endpoint=endpoint)
        if true_region != region:
            raise ConfigError(
                f"artifact store {self.url} is in region {true_region} (the bucket's "
                f"location), but artifact_region says {region}",
                hint=f"set artifact_region = {true_region!r} if that is where the data may go, "
                f"or use a bucket created in {region}",
            )

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

    # Presigned access (see ghaf.artifacts.presign) ------------------------------------

    def presign_get(self, key: str, expires_s: int) -> str:
        """A URL that lets its holder GET the object ``key`` for ``expires_s`` seconds."""
        return str(self._fs.url(f"{self._base}/{key}", expires=expires_s))

    def presign_put(self, key: str, expires_s: int) -> str:
        """A URL that lets its holder PUT the object ``key`` for ``expires_s`` seconds."""
        return str(
            self._fs.url(f"{self._base}/{key}", expires=expires_s, client_method="put_object")
        )

    def size(self, key: str) -> int:
        """Bytes of the object ``key``; raises ``NotFoundError`` when it is missing."""
        path = f"{self._base}/{key}"
        self._fs.invalidate_cache(path)  # a presigned PUT wrote it behind s3fs's back
        try:
            return int(self._fs.info(path)["size"])
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {key} does not exist in {self.url}") from exc

    def promote(self, staged: str, key: str) -> None:
        """Copy the object ``staged`` to ``key`` inside the store, then delete ``staged``
        (so whoever could write ``staged`` has no hold on ``key``)."""
        try:
            self._fs.copy(f"{self._base}/{staged}", f"{self._base}/{key}")
        except FileNotFoundError as exc:
            raise NotFoundError(f"artifact blob {staged} does not exist in {self.url}") from exc
        finally:
            self._fs.invalidate_cache(f"{self._base}/{staged}")
        self.delete(staged)

    # Multipart uploads through presigned part URLs (see ghaf.artifacts.presign) ---------

    def _bucket_key(self, key: str) -> tuple[str, str]:
        bucket, path, _ = self._fs.split_path(f"{self._base}/{key}")
        return str(bucket), str(path)

    def start_multipart(self, key: str) -> str:
        """Begin a multipart upload to ``key``; its upload id."""
        bucket, path = self._bucket_key(key)
        return str(self._fs.call_s3("create_multipart_upload", Bucket=bucket, Key=path)["UploadId"])

    def presign_part(self, key: str, upload_id: str, part: int, expires_s: int) -> str:
        """A URL that lets its holder PUT part ``part`` of upload ``upload_id`` for
        ``expires_s`` seconds (the upload id and part number are signed with it)."""
        return str(
            self._fs.url(
                f"{self._base}/{key}",
                expires=expires_s,
                client_method="upload_part",
                UploadId=upload_id,
                PartNumber=part,
            )
        )

    def uploaded_parts(self, key: str, upload_id: str) -> list[tuple[int, int, str, float]]:
        """(part number, bytes, ETag, received as a POSIX time) of each part upload
        ``upload_id`` has received.

        Raises:
            NotFoundError: the upload is not in progress (completed, aborted, or unknown).
        """
        bucket, path = self._bucket_key(key)
        found: list[tuple[int, int, str, float]] = []
        marker = 0
        while True:
            try:
                page = self._fs.call_s3(
                    "list_parts",
                    Bucket=bucket,
                    Key=path,
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
            except FileNotFoundError as exc:
                raise NotFoundError(
                    f"no multipart upload {upload_id} is in progress for {key} in {self.url}"
                ) from exc
            for part in page.get("Parts", []):
                modified = part.get("LastModified")
                stamp = modified.timestamp() if modified is not None else 0.0
                found.append((int(part["PartNumber"]), int(part["Size"]), str(part["ETag"]), stamp))
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Make ``key`` the object of those (part number, ETag) parts, in order.

        Raises:
            NotFoundError: the upload is not in progress.
        """
        bucket, path = self._bucket_key(key)
        listed = [{"PartNumber": number, "ETag": etag} for number, etag in parts]
        try:
            self._fs.call_s3(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=path,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"no multipart upload {upload_id} is in progress for {key} in {self.url}"
            ) from exc
        finally:
            self._fs.invalidate_cache(f"{self._base}/{key}")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop upload ``upload_id`` and its parts; nothing when it is not in progress."""
        bucket, path = self._bucket_key(key)
        with contextlib.suppress(FileNotFoundError):
            self._fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=path, UploadId=upload_id)

    def pending_multiparts(self, prefix: str) -> Iterator[tuple[str, str, float]]:
        """(key, upload id, begun as a POSIX time) of each multipart upload in progress
        under ``prefix``."""
        bucket, root = self._bucket_key(prefix)
        base = self._base.removeprefix(bucket).strip("/")
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": root}
        while True:
            page = self._fs.call_s3("list_multipart_uploads", **params)
            for upload in page.get("Uploads", []):
                key = str(upload["Key"])
                if base:
                    key = key.removeprefix(base + "/")
                begun = upload.get("Initiated")
                yield key, str(upload["UploadId"]), begun.timestamp() if begun else 0.0
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")

    def objects(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """(key, bytes, last modified as a POSIX time) of each object under ``prefix``,
        temporary ones included."""
        root = f"{self._base}/{prefix}".rstrip("/")
        self._fs.invalidate_cache(root)
        try:
            found = self._fs.find(root, detail=True)
        except FileNotFoundError:
            return
        for path, info in sorted(found.items()):
            modified = info.get("LastModified")
            stamp = modified.timestamp() if modified is not None else 0.0
            yield path.removeprefix(self._base + "/"), int(info.get("size", 0)), stamp

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


def bucket_region(fs: Any, bucket: str, *, create_in: str, endpoint: str | None = None) -> str:
    """The region ``bucket`` lives in, asked of the store (once per process).

    A missing bucket is created in ``create_in`` first.

    Raises:
        ConfigError: the credentials may not ask (``s3:GetBucketLocation``).
        BackendUnavailableError: the store cannot be reached or the bucket not created.
    """
    key = (endpoint or "", bucket)
    with _LOCATIONS_LOCK:
        known = _LOCATIONS.get(key)
    if known is not None:
        return known
    try:
        try:
            answer = fs.call_s3("get_bucket_location", Bucket=bucket)
        except FileNotFoundError:
            _create_bucket(fs, bucket, create_in)
            answer = fs.call_s3("get_bucket_location", Bucket=bucket)
    except PermissionError as exc:
        raise ConfigError(
            f"the S3 store will not say where bucket {bucket} is: {exc}",
            hint="grant these credentials s3:GetBucketLocation on the bucket; residency is "
            "checked against the bucket's real region, never against settings alone",
        ) from exc
    except (ConfigError, BackendUnavailableError):
        raise
    except Exception as exc:
        raise BackendUnavailableError(
            f"cannot reach the S3 store for bucket {bucket}: {exc}",
            hint="check s3_endpoint_url and the credentials in the environment",
        ) from exc
    location = answer.get("LocationConstraint") or ""
    region = _LEGACY_LOCATIONS.get(location, location)
    with _LOCATIONS_LOCK:
        _LOCATIONS[key] = region
    return region


def _create_bucket(fs: Any, bucket: str, region: str) -> None:
    # S3 refuses an explicit us-east-1 constraint: no constraint means us-east-1.
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        fs.call_s3("create_bucket", **params)
    except FileExistsError:  # created meanwhile by another writer: ask where it is
        return
    except PermissionError:
        raise
    except Exception as exc:
        raise BackendUnavailableError(
            f"cannot create bucket {bucket} in region {region}: {exc}",
            hint="create the bucket in that region yourself, or check artifact_region",
        ) from exc
    fs.invalidate_cache("")
