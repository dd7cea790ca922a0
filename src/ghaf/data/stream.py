"""Stream ingestion: an event-bus subject consumed in micro-batches into dataset versions.

Delivery from the bus is at-least-once; the dataset is exactly-once. Each micro-batch
is written in one governed transaction together with its messages' idempotency keys;
keys already recorded are dropped before writing, and messages are acknowledged only
after the commit. A consumer killed anywhere in between is redelivered the messages
it had not acknowledged and skips those it had already written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from ghaf.data.base import DatasetVersion, check_name
from ghaf.data.store import (
    check_dataset_project,
    dataset_parquet_path,
    get_dataset,
    record_version,
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


@governed("dataset.ingest_stream", resource="dataset:{name}")
def write_micro_batch(
    platform: Platform,
    actor: Actor,
    name: str,
    records: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    *,
    source: str,
) -> DatasetVersion | None:
    """Append the records whose keys are new as the next version; ``None`` if none are new.

    Raises:
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
        batch = batch.select(previous.schema.names).cast(previous.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        if previous is not None:
            yield from pq.ParquetFile(dataset_parquet_path(platform, previous.ref)).iter_batches()
        yield from batch.to_batches()

    with staging_dir(platform) as directory:
        staged = stage(batches(), directory, where=f"stream {source}")
        version = record_version(
            platform,
            actor,
            name,
            staged,
            source=source,
            inputs=[previous.node] if previous else (),
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
) -> list[DatasetVersion]:
    """Consume ``subject`` with durable consumer ``consumer`` into versions of ``name``.

    Each fetched micro-batch becomes one new version (the previous rows plus the new
    ones, with their key in the ``_key`` column). Stops after ``max_batches`` or after
    ``idle_batches`` consecutive empty fetches.
    """
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
            platform, actor, name, records, keys, source=f"stream:{subject}"
        )
        for delivery in deliveries:  # only after the commit: a crash before this redelivers
            delivery.ack()
        if version is not None:
            versions.append(version)
        done += 1
    return versions
