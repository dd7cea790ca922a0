"""Ingest a source into a dataset version under a contract; validate data against one."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ghaf.access.residency import check_residency
from ghaf.artifacts.scratch import scratch_dir
from ghaf.data import engine
from ghaf.data.base import DatasetVersion, Source, check_name
from ghaf.data.checks import ContractRunner, ident, literal, run_contract
from ghaf.data.contracts import Contract, RowCount, Unique, as_contract
from ghaf.data.decoding import DEFAULT_ENCODING
from ghaf.data.objects import ObjectStores
from ghaf.data.report import CheckResult, ContractReport
from ghaf.data.sources import ObjectSource, ParquetSource, open_source
from ghaf.data.store import (
    check_version_residency,
    dataset_parquet_path,
    record_version,
    stage,
)
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, governed

ContractLike = Contract | Path | str | Mapping[str, Any] | None


class ContractViolationError(InvalidInputError):
    """An error-severity check failed; nothing was stored. ``report`` has the details."""

    def __init__(self, dataset: str, report: ContractReport) -> None:
        first = report.errors[0]
        super().__init__(
            f"dataset {dataset!r}: contract check {first.name} failed: {first.detail}"
            + (f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""),
            hint="fix the data, relax the check to severity: warn, or enable quarantine",
        )
        self.report = report


def object_stores(platform: Platform) -> ObjectStores:
    """How this home reaches object storage: the artifact store's S3 endpoint."""
    settings = platform.settings
    return ObjectStores(home=settings.home, s3_endpoint_url=settings.s3_endpoint_url)


def check_source_region(
    platform: Platform, actor: Actor, source: ObjectSource, spec: Contract | None
) -> str:
    """Refuse to read ``source`` when its data's tags (the contract's column tags and
    residency) may not be in the region its bucket really is in (asked of the store);
    returns that region.

    Raises:
        PolicyViolationError: naming the tag, the region and the regions allowed (audited).
    """
    region = source.region()
    current_operation().details["source_region"] = region
    tags: dict[str, list[str]] = {}
    if spec is not None:
        for column, tag in sorted(spec.column_tags.items()):
            tags.setdefault(tag, []).append(f"column {column}")
        if spec.residency:
            tags.setdefault(f"resident:{spec.residency}", []).append("dataset residency")
    check_residency(platform, tags, region, actor=actor, resource=f"source {source.url}")
    return region


def _resolver(platform: Platform) -> Any:
    return lambda ref: dataset_parquet_path(platform, ref)


@governed("dataset.ingest", resource="dataset:{name}")
def ingest(
    platform: Platform,
    actor: Actor,
    source: Source | Path | str,
    name: str,
    *,
    contract: ContractLike = None,
    query: str | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> DatasetVersion:
    """Stream ``source`` into a new version of ``name``, checked against ``contract``.

    ``source`` may be a file on object storage (``s3://BUCKET/KEY.parquet|csv``), read
    with the artifact store's S3 settings once its bucket's real region is allowed for
    the contract's tags (:func:`check_source_region`).

    Error-severity failures store nothing and raise :class:`ContractViolationError`; with
    ``quarantine: true`` failing rows go to ``NAME.quarantine`` and the rest are stored.
    A CSV file is decoded as ``encoding``; a byte that does not decode is refused.

    Raises:
        InvalidInputError: unreadable or malformed input (naming file, line, column),
            a bad contract, or a failed check.
    """
    check_name(name)
    spec = as_contract(contract)
    types = spec.arrow_types() if spec else None
    src = open_source(
        source, column_types=types, query=query, encoding=encoding, objects=object_stores(platform)
    )
    if isinstance(src, ObjectSource):  # where the bytes are, before the first is read
        check_source_region(platform, actor, src, spec)
    if spec is not None:  # before the first byte is staged
        check_version_residency(
            platform, actor, name, column_tags=spec.column_tags, residency=spec.residency
        )
    with scratch_dir(platform.settings.home, "stage-") as directory:
        staged = stage(src.batches(), directory, where=src.describe())
        if spec is None:
            return record_version(
                platform, actor, name, staged, source=src.describe(), job="dataset.ingest"
            )
        runner = ContractRunner(spec, staged.path, resolve=_resolver(platform))
        try:
            report = dataclasses.replace(runner.run(), dataset=name)
            quarantine_name: str | None = None
            bad_rows = sum(r.failed for r in report.results if r.kind in _ROW_KINDS)
            if spec.quarantine and bad_rows and not _fatal_besides_rows(report):
                good_path, bad_path = directory / "good.parquet", directory / "bad.parquet"
                runner.split(good_path, bad_path)
                quarantine_name = f"{name}.quarantine"
                bad = stage(
                    ParquetSource(bad_path).batches(),
                    _sub(directory, "bad"),
                    schema=pq.read_schema(bad_path),
                )
                record_version(
                    platform,
                    actor,
                    quarantine_name,
                    bad,
                    source=f"quarantine of {src.describe()}",
                    job="dataset.quarantine",
                    column_tags=spec.column_tags,
                    residency=spec.residency,
                )
                staged = stage(
                    ParquetSource(good_path).batches(),
                    _sub(directory, "good"),
                    schema=pq.read_schema(good_path),
                )
                results = [
                    dataclasses.replace(r, quarantined=r.kind in _ROW_KINDS and r.failed > 0)
                    for r in report.results
                ]
                report = dataclasses.replace(report, results=results, quarantine=quarantine_name)
        finally:
            runner.close()
        current_operation().details["contract"] = report.summary()
        if not report.ok:
            raise ContractViolationError(name, report)
        return record_version(
            platform,
            actor,
            name,
            staged,
            source=src.describe(),
            column_tags=spec.column_tags,
            residency=spec.residency,
            validation=report.to_dict(),
            job="dataset.ingest",
        )


_ROW_KINDS = {"not_null", "range", "allowed", "regex"}


def _fatal_besides_rows(report: ContractReport) -> bool:
    return any(r.kind not in _ROW_KINDS for r in report.errors)


def _sub(directory: Path, name: str) -> Path:
    path = directory / name
    path.mkdir()
    return path


def validate(
    platform: Platform,
    target: str | Path | Source,
    contract: ContractLike,
    *,
    query: str | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> ContractReport:
    """Run ``contract`` on a stored version (``name[:V]``) or on a source; stores nothing."""
    spec = as_contract(contract)
    if spec is None:
        raise InvalidInputError("validate needs a contract", hint="pass --contract C.yaml")
    if isinstance(target, str) and not Path(target).exists():
        try:
            path = dataset_parquet_path(platform, target)
        except (NotFoundError, InvalidInputError):
            path = None
        if path is not None:
            report = run_contract(spec, path, resolve=_resolver(platform))
            return dataclasses.replace(report, dataset=target)
    src = open_source(target, column_types=spec.arrow_types(), query=query, encoding=encoding)
    with scratch_dir(platform.settings.home, "stage-") as directory:
        staged = stage(src.batches(), directory, where=src.describe())
        report = run_contract(spec, staged.path, resolve=_resolver(platform))
    return dataclasses.replace(report, dataset=src.describe())


def check_micro_batch(
    platform: Platform,
    spec: Contract,
    batch: Path,
    previous: Sequence[Path],
    previous_rows: int,
) -> ContractReport:
    """Run ``spec`` for a micro-batch (``batch``) appended after parts ``previous``.

    Row-level, schema, freshness, reference and distribution checks judge the new rows
    alone (the earlier rows passed when they came). A uniqueness check judges the whole
    dataset: the key columns of every part, the new one included (only those columns are
    read). A row-count check judges the whole dataset's rows.
    """
    whole = [c for c in spec.checks if isinstance(c, Unique | RowCount)]
    alone = dataclasses.replace(
        spec, checks=tuple(c for c in spec.checks if not isinstance(c, Unique | RowCount))
    )
    report = run_contract(alone, batch, resolve=_resolver(platform))
    if not whole or any(r.kind == "schema" for r in report.results):
        return report
    rows = report.rows
    total = previous_rows + rows
    files = "[" + ", ".join(literal(str(p)) for p in [*previous, batch]) + "]"
    results = list(report.results)
    for check in whole:
        base = (check.label, check.kind, check.severity, check.columns_checked())
        if isinstance(check, RowCount):
            ok = (check.min is None or total >= check.min) and (
                check.max is None or total <= check.max
            )
            detail = f"{total:,} rows in the dataset (bounds {check.min}..{check.max})"
            results.append(CheckResult(*base, 0 if ok else 1, total, detail))
            continue
        assert isinstance(check, Unique)  # nosec B101 - type narrowing
        cols = ", ".join(ident(c) for c in check.columns)
        present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in check.columns)
        sql = (
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM "  # noqa: S608  # nosec B608 - quoted identifiers and literals
            f"read_parquet({files}) WHERE {present} GROUP BY {cols} HAVING count(*) > 1)"
        )
        failed = int(engine.cursor().execute(sql).fetchall()[0][0])
        detail = f"{failed:,} duplicate rows in the dataset with this micro-batch"
        results.append(CheckResult(*base, failed, total, detail))
    return dataclasses.replace(report, results=results)
