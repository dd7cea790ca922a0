"""Platform-level offline retrieval: historical features, training sets, saving them."""

# SQL here is built from identifiers validated by check_name and quoted, never from values.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from ghaf.data import DatasetVersion, dataset_parquet_path, write_dataset
from ghaf.errors import InvalidInputError
from ghaf.features.offline import (
    SourceResolver,
    ViewRequest,
    point_in_time_join,
    quote,
    source_sql,
)
from ghaf.features.registry import ViewSelection, resolve
from ghaf.features.residency import check_lineage_residency, column_tags_for
from ghaf.pipelines.ray_target import ray_target
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, governed


def dataset_resolver(platform: Platform) -> SourceResolver:
    """Resolve ``dataset:`` refs to verified local Parquet files through ghaf.data."""

    def resolve_ref(ref: str) -> str:
        return str(dataset_parquet_path(platform, ref))

    return resolve_ref


def _requests(selections: Sequence[ViewSelection]) -> list[ViewRequest]:
    return [ViewRequest(s.view, s.features) for s in selections]


def get_historical_features(
    platform: Platform,
    entity_df: Any,
    features: Sequence[str] | str,
    *,
    timestamp_column: str = "event_ts",
    full_feature_names: bool = False,
    batch_size: int = 65_536,
    on: str | None = None,
) -> pa.RecordBatchReader:
    """Point-in-time correct features for every row of ``entity_df``, as Arrow batches.

    Args:
        entity_df: join keys and ``timestamp_column`` (plus columns carried through,
            such as labels): a pyarrow Table, pandas DataFrame or Parquet path.
        features: ``"view:feature"`` refs or a feature service name.
        on: where the join runs: ``local`` (default, in this process), or on Ray,
            partitioned by entity hash: ``ray`` (the cluster at ``ray_address``, else a
            new local node) or ``ray://HOST:PORT``, the head's address
            (:mod:`ghaf.features.join_ray`).

    Raises:
        InvalidInputError: naming the bad column or feature.
    """
    selections, on_demand = resolve(platform, features)
    if on_demand:
        raise InvalidInputError(
            f"on-demand feature view {on_demand[0].name!r} is online-only here",
            hint="compute it from the returned columns with its function",
        )
    on_ray, address = ray_target(on, platform.settings.ray_address, option="on")
    if on_ray:
        from ghaf.features.join_ray import ray_point_in_time_join

        joined = ray_point_in_time_join(
            entity_df,
            _requests(selections),
            address,
            timestamp_column=timestamp_column,
            resolver=dataset_resolver(platform),
            full_feature_names=full_feature_names,
        )
        return joined.table.to_reader(max_chunksize=batch_size)
    return point_in_time_join(
        entity_df,
        _requests(selections),
        timestamp_column=timestamp_column,
        resolver=dataset_resolver(platform),
        full_feature_names=full_feature_names,
        batch_size=batch_size,
    )


def training_entity_frame(
    platform: Platform,
    features: Sequence[str] | str,
    start: datetime,
    end: datetime,
    *,
    extra_columns: Sequence[str] = (),
) -> pa.Table:
    """Entity rows taken from the first view's own source: its keys and event times in
    ``[start, end)``, with ``extra_columns`` (labels) carried through."""
    selections, _ = resolve(platform, features)
    view = selections[0].view
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInputError("start and end must be timezone-aware", hint="use UTC datetimes")
    import duckdb  # on use: importing this module must not load DuckDB

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = source_sql(con, view, dataset_resolver(platform))
    cols = ", ".join(quote(c) for c in (*view.join_keys, *extra_columns))
    ts = quote(view.timestamp_field)
    query = (
        f"SELECT {cols}, {ts} AS event_ts FROM {src} WHERE {ts} >= $start AND {ts} < $end "  # nosec B608
        f"ORDER BY {ts}, __rn"
    )
    try:
        return con.sql(query, params={"start": start, "end": end}).to_arrow_table()
    except duckdb.BinderException as exc:
        raise InvalidInputError(f"cannot build the entity frame: {exc}") from exc


def get_training_set(
    platform: Platform,
    feature_service: str,
    start: datetime,
    end: datetime,
    *,
    extra_columns: Sequence[str] = (),
    batch_size: int = 65_536,
) -> pa.RecordBatchReader:
    """A training set for ``feature_service`` without an entity frame: entity rows are
    the first view's source rows in ``[start, end)``."""
    frame = training_entity_frame(
        platform, feature_service, start, end, extra_columns=extra_columns
    )
    return get_historical_features(
        platform, frame, feature_service, timestamp_column="event_ts", batch_size=batch_size
    )


@governed("features.save_training_set", resource="dataset:{name}")
def save_training_set(
    platform: Platform,
    actor: Actor,
    name: str,
    data: pa.RecordBatchReader | pa.Table,
    features: Sequence[str] | str,
) -> DatasetVersion:
    """Store a retrieval result as a dataset version with lineage to the feature views.

    Feature columns keep their views' classification (a column from a pii view is
    tagged pii), and the views' tags are checked against the store's region first.
    """
    selections, _ = resolve(platform, features)
    inputs = [f"feature_view:{s.view.name}:{s.version}" for s in selections]
    check_lineage_residency(
        platform, inputs, platform.artifacts.region, actor=actor, resource=f"dataset:{name}"
    )
    views = [(s.view, s.version, s.features) for s in selections]
    version = write_dataset(
        platform,
        actor,
        name,
        data,
        source="features.training_set",
        inputs=inputs,
        column_tags=column_tags_for(data.schema.names, views, platform),
    )
    current_operation().details["dataset"] = f"dataset:{version.name}:{version.version}"
    return version
