"""Stream ingestion: an event-bus subject consumed in micro-batches into dataset versions.

Delivery from the bus is at-least-once; the dataset is exactly-once. Each micro-batch
is written in one governed transaction together with its messages' idempotency keys;
keys already recorded are dropped before writing, and messages are acknowledged only
after the commit. A consumer killed anywhere in between is redelivered the messages
it had not acknowledged and skips those it had already written.

Each micro-batch is stored as one new part appended to the previous version
(:func:`ghaf.data.store.append_version`): the previous rows are referenced, never read
or written again, so a micro-batch costs its own rows whatever the stream's length.
A contract, when given, is checked on each micro-batch before it is stored
(:func:`ghaf.data.ingest.check_micro_batch`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from ghaf.data.base import DatasetVersion, check_name
from ghaf.data.contracts import as_contract
from ghaf.data.ingest import ContractLike, ContractViolationError, check_micro_batch
from ghaf.data.store import (
    append_version,
    check_dataset_project,
    dataset_parquet_paths,
    get_dataset,
    stage,
    staging_dir,
)
from ghaf.data.tables import StreamKeyRow
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.events.base import Delivery
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed


def _key(delivery: Delivery, key_field: str | None) -> str:
    if key_field is None:
        return delivery.event.id
    value = delivery.event.data.get(key_field)
    if value is None:
        raise InvalidInputError(
            f"stream message {delivery.event.id} on {delivery.event.subject} has no "
            f"idempotency key {key_field!r}",
            hint="publish every message with the key field, or use key_field=None (message id)",
        )
    return str(value)


def _previous(platform: Platform, name: str) -> DatasetVersion | None:
    try:
        return get_dataset(platform, name)
    except NotFoundError:
        return None


def _conform(batch: pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    missing = [column for column in schema.names if column not in batch.column_names]
    if missing:
        raise InvalidInputError(
            f"stream records for dataset {name!r} have no field {missing[0]!r}",
            hint=f"publish every record with the dataset's fields: {', '.join(schema.names)}",
        )
    try:
        return batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInputError(
            f"stream records for dataset {name!r} do not fit its columns: {exc}",
            hint="publish values of the types the dataset's first batch had",
        ) from exc


@governed("dataset.ingest_stream", resource="dataset:{name}")
def write_micro_batch(
    platform: Platform,
    actor: Actor,
    name: str,
    records: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    source: str,
    contract: ContractLike = None,
) -> DatasetVersion | None:
    """Append the records whose keys are new as the next version; ``None`` if none are new.

    With ``contract``, the new records are checked before anything is stored
    (:func:`ghaf.data.ingest.check_micro_batch`); a failed error-severity check stores
    nothing, records no key, and raises.

    Raises:
        ContractViolationError: the micro-batch fails the contract.
        AlreadyExistsError: ``name`` is another project's dataset (checked before its keys
            are read, so whether they are known there never shows).
    """
    check_name(name)
    check_dataset_project(platform, name)
    session = current_session()
    # Reading the keys first takes the write lock (SQLite) before we decide what is new.
    seen = set(
        session.execute(
            select(StreamKeyRow.key).where(StreamKeyRow.dataset == name, StreamKeyRow.key.in_(keys))
        ).scalars()
    )
    fresh: dict[str, Mapping[str, Any]] = {}
    for key, record in zip(keys, records, strict=True):
        if key not in seen and key not in fresh:
            fresh[key] = record
    current_operation().details.update(received=len(keys), new=len(fresh))
    if not fresh:
        return None
    previous = _previous(platform, name)
    batch = pa.Table.from_pylist([{"_key": k, **r} for k, r in fresh.items()])
    if previous is not None:
        batch = _conform(batch, previous.schema, name)
    spec = as_contract(contract)
    with staging_dir(platform) as directory:
        staged = stage(batch, directory, where=f"stream {source}")
        validation = None
        if spec is not None:
            earlier = dataset_parquet_paths(platform, previous.ref) if previous else []
            report = dataclasses.replace(
                check_micro_batch(
                    platform, spec, staged.path, earlier, previous.num_rows if previous else 0
                ),
                dataset=name,
            )
            current_operation().details["contract"] = report.summary()
            if not report.ok:
                raise ContractViolationError(name, report)
            validation = report.to_dict()
        version = append_version(
            platform,
            actor,
            name,
            staged,
            source=source,
            validation=validation,
            job="dataset.ingest_stream",
        )
    session.add_all(StreamKeyRow(dataset=name, key=k, version=version.version) for k in fresh)
    session.flush()
    return version


def ingest_stream(
    platform: Platform,
    actor: Actor,
    subject: str,
    name: str,
    *,
    consumer: str,
    key_field: str | None = "id",
    batch_size: int = 1_000,
    timeout: float = 1.0,
    max_batches: int | None = None,
    idle_batches: int = 1,
    contract: ContractLike = None,
) -> list[DatasetVersion]:
    """Consume ``subject`` with durable consumer ``consumer`` into versions of ``name``.

    Each fetched micro-batch becomes one new version: the previous version's parts
    and one new part with the new rows (their key in the ``_key`` column). Stops after
    ``max_batches`` or after ``idle_batches`` consecutive empty fetches. With
    ``contract``, each micro-batch is checked before it is stored; one that fails stops
    the ingest unacknowledged.
    """
    spec = as_contract(contract)
    durable = platform.events.durable_consumer(subject, consumer)
    versions: list[DatasetVersion] = []
    done = idle = 0
    while max_batches is None or done < max_batches:
        deliveries = durable.fetch(batch_size, timeout)
        if not deliveries:
            idle += 1
            if idle >= idle_batches:
                break
            continue
        idle = 0
        keys = [_key(d, key_field) for d in deliveries]
        records = [dict(d.event.data) for d in deliveries]
        version = write_micro_batch(
            platform, actor, name, records, keys, source=f"stream:{subject}", contract=spec
        )
        for delivery in deliveries:  # only after the commit: a crash before this redelivers
            delivery.ack()
        if version is not None:
            versions.append(version)
        done += 1
    return versions
