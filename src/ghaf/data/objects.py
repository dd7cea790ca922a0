"""Files on object storage as ingest sources: ``s3://BUCKET/KEY.parquet|csv`` through fsspec.

An object is read with the artifact store's S3 settings (``s3_endpoint_url``; the keys
come from the AWS SDK's usual chain, as for the artifact store) and ``gs://``/``abfs://``
where fsspec's implementation for them (gcsfs, adlfs) is installed. The bucket's region
is asked of the store (``GetBucketLocation``), never taken from a setting, and the
ingest checks it against the data's tags before the first byte is read
(:func:`ghaf.data.ingest.ingest`). The object is copied into a private scratch
directory of the home and read there by the file sources
(:class:`ghaf.data.sources.ObjectSource`), so a malformed file is named by its URL,
line and column exactly as a local one.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import (
    BackendUnavailableError,
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
)

OBJECT_SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "az": ("adlfs", "azure"),
}
"""Object-store URL scheme -> (the fsspec implementation's package, Ghaf's extra)."""

UNKNOWN_REGION = "unknown"
"""The region of a bucket whose store cannot be asked (not S3): tagged data is refused."""

_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}


@dataclass(frozen=True)
class ObjectStores:
    """How to reach object storage: the home (for scratch copies) and the S3 endpoint."""

    home: Path
    s3_endpoint_url: str | None = None

    def options(self, scheme: str) -> dict[str, Any]:
        """fsspec storage options for ``scheme``."""
        if scheme != "s3":
            return {}
        options: dict[str, Any] = {"config_kwargs": {"signature_version": "s3v4"}}
        if self.s3_endpoint_url:
            options["endpoint_url"] = self.s3_endpoint_url
        return options


@dataclass
class ObjectFile:
    """One CSV or Parquet object: its format, its bucket's region, a local copy of it."""

    url: str
    stores: ObjectStores

    def __post_init__(self) -> None:
        parsed = urlparse(self.url)
        self.scheme = parsed.scheme
        self.bucket = parsed.netloc
        self.key = parsed.path.lstrip("/")
        self.suffix = PurePosixPath(self.key).suffix.lower()
        if not self.bucket or not self.key or self.suffix not in _FORMATS:
            raise InvalidInputError(
                f"source {self.url!r} is not an object URL Ghaf can ingest",
                hint=f"use {self.scheme}://BUCKET/KEY.parquet or {self.scheme}://BUCKET/KEY.csv",
            )
        self.format = _FORMATS[self.suffix]
        self._fs: Any = None

    def filesystem(self) -> Any:
        """The fsspec filesystem of the URL's scheme, opened once."""
        if self._fs is None:
            import fsspec

            package, extra = OBJECT_SCHEMES[self.scheme]
            try:
                self._fs = fsspec.filesystem(self.scheme, **self.stores.options(self.scheme))
            except ImportError as exc:
                raise MissingDependencyError(package, extra) from exc
        return self._fs

    def region(self) -> str:
        """Where the bucket lives, asked of the store (``GetBucketLocation`` on S3).

        Raises:
            ConfigError: the credentials may not ask.
            InvalidInputError: the bucket does not exist.
            BackendUnavailableError: the store cannot be reached.
        """
        if self.scheme != "s3":
            return UNKNOWN_REGION
        fs = self.filesystem()
        try:
            answer = fs.call_s3("get_bucket_location", Bucket=self.bucket)
        except PermissionError as exc:
            raise ConfigError(
                f"the S3 store will not say where bucket {self.bucket} is: {exc}",
                hint="grant these credentials s3:GetBucketLocation on the bucket; residency "
                "is checked against the bucket's real region, never against settings alone",
            ) from exc
        except FileNotFoundError as exc:
            raise InvalidInputError(
                f"source {self.url}: bucket {self.bucket} does not exist",
                hint="check the bucket name and s3_endpoint_url",
            ) from exc
        except Exception as exc:
            raise BackendUnavailableError(
                f"cannot reach the S3 store for bucket {self.bucket}: {exc}",
                hint="check s3_endpoint_url and the credentials in the environment",
            ) from exc
        location = answer.get("LocationConstraint") or ""
        return _LEGACY_LOCATIONS.get(location, location)

    @contextlib.contextmanager
    def local_copy(self) -> Iterator[Path]:
        """The object copied into a private scratch directory of the home (removed after)."""
        fs = self.filesystem()
        with scratch_dir(self.stores.home, "object-") as directory:
            local = directory / f"object{self.suffix}"
            try:
                with fs.open(f"{self.bucket}/{self.key}", "rb") as source, local.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 8 << 20)
            except FileNotFoundError as exc:
                raise InvalidInputError(
                    f"source {self.url}: no such object", hint="check the bucket and the key"
                ) from exc
            except PermissionError as exc:
                raise InvalidInputError(
                    f"source {self.url}: these credentials may not read it ({exc})",
                    hint="grant s3:GetObject on the object, or use other credentials",
                ) from exc
            yield local
