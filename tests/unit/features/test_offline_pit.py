"""Point-in-time joins match a naive Python reference exactly (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.errors import InvalidInputError
from ghaf.features.definitions import Entity, FeatureView, Field
from ghaf.features.offline import ViewRequest, point_in_time_join

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
CUSTOMER = Entity("customer", ("cid",))


def _reference(
    entity: list[tuple[int, datetime]],
    rows: list[dict[str, Any]],
    ttl: timedelta | None,
    created: bool,
) -> list[float | None]:
    """For each entity row: the best eligible feature row, by brute force."""
    out: list[float | None] = []
    for cid, t in entity:
        best: tuple[Any, ...] | None = None
        for rn, row in enumerate(rows):
            if row["cid"] != cid or row["event_ts"] > t:
                continue
            if created and row["created_ts"] > t:
                continue
            rank = (row["event_ts"], row["created_ts"] if created else 0, rn)
            if best is None or rank > best[0]:
                best = (rank, row)
        if best is None or (ttl is not None and best[1]["event_ts"] < t - ttl):
            out.append(None)
        else:
            out.append(best[1]["x"])
    return out


minutes = st.integers(min_value=0, max_value=40)
feature_rows = st.lists(
    st.fixed_dictionaries(
        {"cid": st.integers(1, 4), "ev": minutes, "lag": st.integers(0, 15), "x": st.floats(-5, 5)}
    ),
    max_size=40,
)
entity_rows = st.lists(st.tuples(st.integers(1, 5), minutes), min_size=1, max_size=30)


def _table(rows: list[dict[str, Any]]) -> tuple[pa.Table, list[dict[str, Any]]]:
    full = [
        {
            "cid": r["cid"],
            "event_ts": T0 + timedelta(minutes=r["ev"]),
            "created_ts": T0 + timedelta(minutes=r["ev"] + r["lag"]),
            "x": r["x"],
        }
        for r in rows
    ]
    table = pa.table(
        {
            "cid": pa.array([r["cid"] for r in full], pa.int64()),
            "event_ts": pa.array([r["event_ts"] for r in full], TS),
            "created_ts": pa.array([r["created_ts"] for r in full], TS),
            "x": pa.array([r["x"] for r in full], pa.float64()),
        }
    )
    return table, full


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=feature_rows,
    b=feature_rows,
    ents=entity_rows,
    ttl_a=st.one_of(st.none(), st.integers(1, 20)),
    ttl_b=st.one_of(st.none(), st.integers(1, 20)),
)
def test_matches_naive_reference(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    ents: list[tuple[int, int]],
    ttl_a: int | None,
    ttl_b: int | None,
) -> None:
    table_a, rows_a = _table(a)
    table_b, rows_b = _table(b)
    delta_a = None if ttl_a is None else timedelta(minutes=ttl_a)
    delta_b = None if ttl_b is None else timedelta(minutes=ttl_b)
    plain = FeatureView("plain", (CUSTOMER,), "a", (Field("x"),), ttl=delta_a)
    late = FeatureView(
        "late", (CUSTOMER,), "b", (Field("x"),), created_timestamp_field="created_ts", ttl=delta_b
    )
    entity = [(cid, T0 + timedelta(minutes=m)) for cid, m in ents]
    frame = pa.table(
        {
            "cid": pa.array([e[0] for e in entity], pa.int64()),
            "event_ts": pa.array([e[1] for e in entity], TS),
            "label": pa.array(list(range(len(entity))), pa.int64()),
        }
    )
    result = point_in_time_join(
        frame,
        [ViewRequest(plain, ("x",)), ViewRequest(late, ("x",))],
        tables={"a": table_a, "b": table_b},
        full_feature_names=True,
    ).read_all()
    assert result.num_rows == len(entity)
    assert result.column("label").to_pylist() == list(range(len(entity)))
    assert result.column("plain__x").to_pylist() == _reference(entity, rows_a, delta_a, False)
    assert result.column("late__x").to_pylist() == _reference(entity, rows_b, delta_b, True)


def _frame(**overrides: Any) -> pa.Table:
    columns: dict[str, Any] = {
        "cid": pa.array([1], pa.int64()),
        "event_ts": pa.array([T0], TS),
    }
    columns.update(overrides)
    return pa.table({k: v for k, v in columns.items() if v is not None})


SOURCE = pa.table({"cid": pa.array([1], pa.int64()), "event_ts": pa.array([T0], TS), "x": [1.0]})
VIEW = FeatureView("v", (CUSTOMER,), "s", (Field("x"),))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame(cid=None), "'cid'"),
        (_frame(event_ts=None), "'event_ts'"),
        (_frame(event_ts=pa.array(["2026-01-01"])), "'event_ts' has type string"),
        (_frame(event_ts=pa.array([T0.replace(tzinfo=None)], pa.timestamp("us"))), "naive"),
        (_frame(cid=pa.array(["1"])), "join key column 'cid' is string"),
    ],
)
def test_bad_entity_frames_name_the_column(frame: pa.Table, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        point_in_time_join(frame, [ViewRequest(VIEW, ("x",))], tables={"s": SOURCE})


def test_unknown_feature_is_named() -> None:
    with pytest.raises(InvalidInputError, match="v:nope"):
        VIEW.field("nope")
    bad = FeatureView("v", (CUSTOMER,), "s", (Field("y"),))
    with pytest.raises(InvalidInputError, match="no column 'y'"):
        point_in_time_join(_frame(), [ViewRequest(bad, ("y",))], tables={"s": SOURCE})


@pytest.mark.parametrize(
    "far", [timedelta(days=3), timedelta(days=365 * 2000)], ids=["bigint-key", "hugeint-key"]
)
def test_ties_and_edges_with_either_asof_key(far: timedelta) -> None:
    """A narrow source packs (event time, row) into a BIGINT key; one spanning 2,000
    years with 128 rows does not fit (2,000 years in µs, shifted by 8 bits of row number,
    passes 2**63) and falls back to HUGEINT. Both answer the same: the later of two rows
    at the same instant wins, nothing matches before the first row, the last row matches
    after the last."""
    import duckdb

    from ghaf.features.offline import key_range, source_sql

    times = [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5), T0 + far] + [T0] * 124
    source = pa.table(
        {
            "cid": pa.array([1, 1, 1, 1] + [2] * 124, pa.int64()),
            "event_ts": pa.array(times, TS),
            "x": [1.0, 2.0, 3.0, 4.0] + [0.0] * 124,
        }
    )
    ask = [
        T0 - timedelta(days=365 * 200),
        T0 - timedelta(microseconds=1),
        T0,
        T0 + timedelta(minutes=5),
        T0 + far - timedelta(microseconds=1),
        T0 + far,
        T0 + far + timedelta(days=365 * 100),
    ]
    frame = pa.table({"cid": pa.array([1] * len(ask), pa.int64()), "event_ts": pa.array(ask, TS)})
    result = point_in_time_join(frame, [ViewRequest(VIEW, ("x",))], tables={"s": source}).read_all()
    assert result.column("x").to_pylist() == [None, None, 1.0, 3.0, 3.0, 4.0, 4.0]
    con = duckdb.connect()
    packed = key_range(con, source_sql(con, VIEW, None, {"s": source}), VIEW)
    assert (packed is not None) == (far < timedelta(days=365))


def test_parquet_entity_frame_is_scanned_like_an_arrow_one(tmp_path: Any) -> None:
    """A Parquet path is scanned by DuckDB directly: same rows, order, columns and errors."""
    import pyarrow.parquet as pq

    source = pa.table(
        {
            "cid": pa.array([1, 1, 2], pa.int64()),
            "event_ts": pa.array([T0, T0 + timedelta(minutes=5), T0], TS),
            "x": [1.0, 2.0, 3.0],
        }
    )
    frame = pa.table(
        {
            "cid": pa.array([2, 1, 1, 3], pa.int64()),
            "event_ts": pa.array([T0 + timedelta(minutes=m) for m in (1, 9, 2, 1)], TS),
            "label": pa.array([True, False, True, False]),
        }
    )
    path = tmp_path / "entity.parquet"
    pq.write_table(frame, path, row_group_size=2)
    request = [ViewRequest(VIEW, ("x",))]
    from_arrow = point_in_time_join(frame, request, tables={"s": source}).read_all()
    from_file = point_in_time_join(path, request, tables={"s": source}).read_all()
    assert from_file.column_names == ["cid", "event_ts", "label", "x"]
    assert from_file.column("x").to_pylist() == [3.0, 2.0, 1.0, None]
    assert from_file.column("x").equals(from_arrow.column("x"))
    assert from_file.column("label").equals(from_arrow.column("label"))
    nulls = frame.set_column(1, "event_ts", pa.array([T0, None, T0, T0], TS))
    pq.write_table(nulls, path)
    with pytest.raises(InvalidInputError, match="'event_ts' has null"):
        point_in_time_join(path, request, tables={"s": source})
    pq.write_table(frame.drop(["cid"]), path)
    with pytest.raises(InvalidInputError, match="'cid'"):
        point_in_time_join(str(path), request, tables={"s": source})
