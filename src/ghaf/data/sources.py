"""Sources that stream Arrow record batches: CSV, Parquet, JSON lines, SQL, Delta Lake,
Iceberg, and CSV or Parquet objects on object storage (:mod:`ghaf.data.objects`).

Every reader streams in bounded blocks, and turns reader errors into one
``InvalidInputError`` naming the file, the line and the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa

from ghaf.data.base import Source
from ghaf.data.decoding import DEFAULT_ENCODING, DecodedFile, codec_name, unclosed_quote_line
from ghaf.data.objects import OBJECT_SCHEMES, ObjectFile, ObjectStores
from ghaf.errors import BackendUnavailableError, InvalidInputError, MissingDependencyError

BATCH_ROWS = 65_536
BLOCK_BYTES = 4 << 20
"""CSV/JSON read block: the reader holds several blocks at once, so this sets its memory."""
_CSV_ROW = re.compile(r"Row #(\d+)")
_CSV_COLUMN = re.compile(r"In CSV column #(\d+)")
_JSON_ROW = re.compile(r"in row (\d+)")


def _unreadable(path: Path, exc: OSError) -> InvalidInputError:
    return InvalidInputError(
        f"cannot read {path}: {exc.strerror or exc}", hint="check the path and its permissions"
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise InvalidInputError(f"cannot read {path}: no such file", hint="check the path")


@dataclass
class CsvSource:
    """A CSV file with a header row; ``column_types`` pins types (else they are inferred).

    The file is decoded strictly in ``encoding`` (UTF-8 unless told otherwise): a byte
    that does not decode, or a quote that never closes, is refused with its line rather
    than ingested as a binary column or as one value running to the end of the file.
    """

    path: Path
    column_types: Mapping[str, pa.DataType] = field(default_factory=dict)
    delimiter: str = ","
    block_size: int = BLOCK_BYTES
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        self.encoding = codec_name(self.encoding)

    def describe(self) -> str:
        return f"csv:{self.path}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        from pyarrow import csv

        _check_file(self.path)
        names: list[str] = []
        try:
            with DecodedFile(self.path, self.encoding) as text:
                try:
                    reader = csv.open_csv(
                        text,
                        # Single-threaded so errors carry the physical line number.
                        read_options=csv.ReadOptions(use_threads=False, block_size=self.block_size),
                        parse_options=csv.ParseOptions(delimiter=self.delimiter),
                        convert_options=csv.ConvertOptions(column_types=dict(self.column_types)),
                    )
                    names = reader.schema.names
                    missing = [c for c in self.column_types if c not in names]
                    if missing:
                        raise InvalidInputError(
                            f"{self.path}: column {missing[0]!r} is missing "
                            f"(header has {', '.join(names)})",
                            hint="fix the header or the contract",
                        )
                    yield from reader
                except pa.ArrowInvalid as exc:
                    # A stream cut short by a bad byte, or a quote left open, is the cause.
                    self._raise_if_malformed(text, after_parse_error=True)
                    raise self._describe_error(exc, names) from exc
                self._raise_if_malformed(text)
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc

    def _raise_if_malformed(self, text: DecodedFile, *, after_parse_error: bool = False) -> None:
        if text.failure is not None:
            raise text.failure  # the reader saw the stream end at the bad byte
        text.drain()  # the quote count covers the whole file
        if text.failure is not None and not after_parse_error:
            raise text.failure
        line = (
            unclosed_quote_line(self.path, self.encoding, self.delimiter)
            if text.odd_quotes
            else None
        )
        if line is not None:
            raise InvalidInputError(
                f"{self.path}: line {line}: a quoted value opens there and never closes",
                hint='close the quote; write a quote inside a quoted value as two ("")',
            )

    def _header(self) -> list[str]:
        import csv as pycsv

        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        with self.path.open(newline="", encoding=encoding, errors="replace") as handle:
            return next(pycsv.reader(handle, delimiter=self.delimiter), [])

    def _describe_error(self, exc: Exception, names: list[str]) -> InvalidInputError:
        message = str(exc)
        row = _CSV_ROW.search(message)
        column = _CSV_COLUMN.search(message)
        where = f"{self.path}"
        if row:
            where += f": line {row.group(1)}"
        if column and not names:
            names = self._header()
        if column and int(column.group(1)) < len(names):
            where += f", column {names[int(column.group(1))]!r}"
        detail = message.split(": ", 2)[-1] if row else message
        if "conversion error" in message:
            detail = message[message.index("CSV conversion error") :]
        return InvalidInputError(f"{where}: {detail}", hint="fix the row or the column's type")


@dataclass
class ParquetSource:
    """A Parquet file, read one row group slice at a time."""

    path: Path

    def describe(self) -> str:
        return f"parquet:{self.path}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        _check_file(self.path)
        try:
            file = pq.ParquetFile(self.path)
            yield from file.iter_batches(batch_size=BATCH_ROWS)
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc
        except pa.ArrowInvalid as exc:
            raise InvalidInputError(
                f"{self.path}: not a readable Parquet file: {exc}", hint="check the file"
            ) from exc


@dataclass
class JsonLinesSource:
    """Newline-delimited JSON objects; ``column_types`` pins types of those columns."""

    path: Path
    column_types: Mapping[str, pa.DataType] = field(default_factory=dict)
    block_size: int = BLOCK_BYTES

    def describe(self) -> str:
        return f"jsonl:{self.path}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        from pyarrow import json as pj

        _check_file(self.path)
        schema = pa.schema(list(self.column_types.items())) if self.column_types else None
        rows = 0
        try:
            reader = pj.open_json(
                self.path,
                read_options=pj.ReadOptions(use_threads=False, block_size=self.block_size),
                parse_options=pj.ParseOptions(explicit_schema=schema),
            )
            for batch in reader:
                missing = [c for c in self.column_types if batch.column(c).null_count == len(batch)]
                if missing and rows == 0 and len(batch):
                    raise InvalidInputError(
                        f"{self.path}: column {missing[0]!r} is missing (null in every row of "
                        "the first block)",
                        hint="fix the data or the contract",
                    )
                rows += batch.num_rows
                yield batch
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc
        except pa.ArrowInvalid as exc:
            message = str(exc)
            match = _JSON_ROW.search(message)
            # The reader counts rows within the failing block; add the rows before it.
            line = f": line {rows + int(match.group(1)) + 1}" if match else ""
            raise InvalidInputError(
                f"{self.path}{line}: {message.removeprefix('JSON parse error: ')}",
                hint="fix the line or the column's type",
            ) from exc


@dataclass
class SqlSource:
    """The result of a SQL query over any SQLAlchemy URL, fetched in server-side batches."""

    url: str
    query: str
    batch_rows: int = 50_000

    def describe(self) -> str:
        from sqlalchemy.engine import make_url

        safe = make_url(self.url).render_as_string(hide_password=True)
        return f"sql:{safe} :: {self.query}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

        try:
            engine = create_engine(self.url)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise InvalidInputError(f"SQL source URL is invalid: {exc}") from exc
        schema: pa.Schema | None = None
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=self.batch_rows)
                rows = result.execute(text(self.query))
                names = list(rows.keys())
                for part in rows.partitions(self.batch_rows):
                    columns = list(zip(*part, strict=True))
                    arrays = [pa.array(list(c)) for c in columns]
                    batch = pa.RecordBatch.from_arrays(arrays, names=names)
                    if schema is None:
                        schema = batch.schema
                    yield batch
        except DBAPIError as exc:
            detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            if exc.connection_invalidated or "connect" in detail.lower():
                raise BackendUnavailableError(f"SQL source: {detail}") from exc
            raise InvalidInputError(
                f"SQL source query failed: {detail}", hint="fix the query"
            ) from exc
        finally:
            engine.dispose()


@dataclass
class DeltaSource:
    """A Delta Lake table (optionally at a given version)."""

    uri: str
    version: int | None = None

    def describe(self) -> str:
        suffix = f"@v{self.version}" if self.version is not None else ""
        return f"delta:{self.uri}{suffix}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            from deltalake import DeltaTable
            from deltalake.exceptions import TableNotFoundError
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("deltalake", "data") from exc
        try:
            table = DeltaTable(self.uri, version=self.version)
        except TableNotFoundError as exc:
            raise InvalidInputError(f"no Delta table at {self.uri}", hint="check the path") from exc
        yield from table.to_pyarrow_dataset().to_batches(batch_size=BATCH_ROWS)


@dataclass
class IcebergSource:
    """An Iceberg table from a SQL catalog (``sqlite:///catalog.db`` or PostgreSQL)."""

    catalog_uri: str
    identifier: str
    warehouse: str | None = None

    def describe(self) -> str:
        return f"iceberg:{self.catalog_uri}#{self.identifier}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            from pyiceberg.catalog.sql import SqlCatalog
            from pyiceberg.exceptions import NoSuchTableError
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingDependencyError("pyiceberg", "data") from exc
        props: dict[str, Any] = {"uri": self.catalog_uri}
        if self.warehouse:
            props["warehouse"] = self.warehouse
        catalog = SqlCatalog("ghaf", **props)
        try:
            table = catalog.load_table(self.identifier)
        except NoSuchTableError as exc:
            raise InvalidInputError(
                f"no Iceberg table {self.identifier!r} in {self.catalog_uri}",
                hint="use NAMESPACE.TABLE",
            ) from exc
        yield from table.scan().to_arrow_batch_reader()


@dataclass
class ObjectSource:
    """A CSV or Parquet file on object storage (``s3://BUCKET/KEY.csv``), read as a local
    file once copied to scratch; :meth:`region` asks where its bucket is."""

    url: str
    stores: ObjectStores
    column_types: Mapping[str, pa.DataType] = field(default_factory=dict)
    encoding: str = DEFAULT_ENCODING

    def __post_init__(self) -> None:
        self.file = ObjectFile(self.url, self.stores)

    def describe(self) -> str:
        return self.url

    def region(self) -> str:
        """The bucket's region, asked of the store (see :meth:`ObjectFile.region`)."""
        return self.file.region()

    def batches(self) -> Iterator[pa.RecordBatch]:
        with self.file.local_copy() as local:
            inner: Source
            if self.file.format == "csv":
                delimiter = "\t" if self.file.suffix == ".tsv" else ","
                inner = CsvSource(
                    local, self.column_types, delimiter=delimiter, encoding=self.encoding
                )
            else:
                inner = ParquetSource(local)
            try:
                yield from inner.batches()
            except InvalidInputError as exc:  # name the object, not its scratch copy
                raise InvalidInputError(
                    exc.headline.replace(str(local), self.url), hint=exc.hint
                ) from exc


_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


SQL_SCHEMES = frozenset(
    {"postgresql", "postgres", "sqlite", "mysql", "mariadb", "oracle", "mssql", "duckdb"}
)
"""SQLAlchemy dialects a ``SCHEME://`` source names (with or without ``+driver``)."""

SOURCE_FORMS = (
    "a file (.csv, .tsv, .parquet, .jsonl), s3://BUCKET/KEY.parquet|csv (gs://, abfs:// "
    "with gcsfs or adlfs installed), a SQL URL (postgresql://, sqlite://, mysql://... or "
    "sql:URL) with a query, delta:PATH or iceberg:CATALOG_URL#namespace.table"
)
"""What a source may be, for the hint of an error naming one Ghaf cannot read."""


def _scheme_source(
    text: str,
    scheme: str,
    *,
    types: Mapping[str, pa.DataType],
    query: str | None,
    encoding: str,
    objects: ObjectStores | None,
) -> Source | Path:
    """The source a ``SCHEME://`` spec names, or the local path of a ``file://`` one."""
    if scheme == "file":
        return Path(unquote(urlparse(text).path))
    if scheme in OBJECT_SCHEMES:
        if query:
            raise InvalidInputError(
                f"source {text!r} is a file on object storage: a query is for SQL sources",
                hint="drop --query",
            )
        if objects is None:
            raise InvalidInputError(
                f"source {text!r}: object storage is read by an ingest on a home",
                hint="ghaf data ingest s3://BUCKET/KEY.parquet --name NAME",
            )
        return ObjectSource(text, objects, types, encoding=encoding)
    if scheme.partition("+")[0] in SQL_SCHEMES:
        if not query:
            raise InvalidInputError(
                f"SQL source {text.split('@')[-1]!r} needs a query",
                hint="pass --query 'SELECT ...'",
            )
        return SqlSource(text, query)
    raise InvalidInputError(
        f"source: {scheme}:// is not a scheme Ghaf reads", hint=f"use {SOURCE_FORMS}"
    )


def open_source(
    spec: str | Path | Source,
    *,
    column_types: Mapping[str, pa.DataType] | None = None,
    query: str | None = None,
    encoding: str = DEFAULT_ENCODING,
    objects: ObjectStores | None = None,
) -> Source:
    """Pick a source from a spec.

    ``file.csv|.tsv|.parquet|.jsonl`` (or ``file://``); ``s3://BUCKET/KEY.parquet|csv``
    and ``gs://``/``abfs://`` where fsspec can reach them (with ``objects``: how);
    ``delta:PATH[@VERSION]`` (or a directory with a ``_delta_log``);
    ``iceberg:CATALOG_URL#namespace.table``; ``sql:URL`` or a SQLAlchemy URL
    (``postgresql://``, ``sqlite://``...) with ``query``. ``encoding`` is the text
    encoding of a CSV file.

    Raises:
        InvalidInputError: a scheme Ghaf does not read (naming the accepted forms), a SQL
            source without a query, or a file of unknown format.
    """
    if not isinstance(spec, str | Path):
        return spec
    types = dict(column_types or {})
    text = str(spec)
    if text.startswith("delta:"):
        uri, _, version = text.removeprefix("delta:").partition("@")
        return DeltaSource(uri, int(version.removeprefix("v")) if version else None)
    if text.startswith("iceberg:"):
        uri, sep, identifier = text.removeprefix("iceberg:").rpartition("#")
        if not sep:
            raise InvalidInputError(
                f"Iceberg source {text!r} has no table", hint="iceberg:CATALOG_URL#namespace.table"
            )
        return IcebergSource(uri, identifier)
    if text.startswith("sql:"):
        if not query:
            raise InvalidInputError(
                f"SQL source {text.split('@')[-1]!r} needs a query",
                hint="pass --query 'SELECT ...'",
            )
        return SqlSource(text.removeprefix("sql:"), query)
    local = Path(text)
    if "://" in text:
        scheme = text.partition("://")[0].lower()
        found = _scheme_source(
            text, scheme, types=types, query=query, encoding=encoding, objects=objects
        )
        if not isinstance(found, Path):
            return found
        local = found
    path = local.expanduser().absolute()
    if path.is_dir() and (path / "_delta_log").is_dir():
        return DeltaSource(str(path))
    kind = _EXTENSIONS.get(path.suffix.lower())
    if kind == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        return CsvSource(path, types, delimiter=delimiter, encoding=encoding)
    if kind == "parquet":
        return ParquetSource(path)
    if kind == "jsonl":
        return JsonLinesSource(path, types)
    raise InvalidInputError(
        f"cannot tell the format of {path}",
        hint=f"use {SOURCE_FORMS}",
    )
