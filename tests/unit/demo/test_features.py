"""The demo's features: the 24-hour count is exact at any moment, in a point-in-time join
and in what materialization writes online (hypothesis, against a brute-force count); the
request fields are one encoding for the training set and for requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.demo.bank_data import CATEGORIES
from ghaf.demo.stage_features import (
    REQUEST_FIELDS,
    behaviour_view,
    entity_frame,
    request_fields,
)
from ghaf.features.materialize import latest_rows
from ghaf.features.offline import ViewRequest, point_in_time_join, source_sql

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400
NODE = "dataset:tx:1"
# Offsets near the window's edges, where an off-by-one would show.
EDGES = (0, 1, DAY - 1, DAY, DAY + 1, 2 * DAY, 2 * DAY + 1)
offsets = st.one_of(st.integers(0, 3 * DAY), st.sampled_from(EDGES))
customers = st.integers(1, 3)
moments = st.one_of(offsets, st.integers(0, 5 * DAY))


def _transactions(rows: list[tuple[int, int]]) -> pa.Table:
    ids = np.asarray([c for c, _ in rows], dtype=np.int64)
    seconds = np.asarray([o for _, o in rows], dtype=np.int64)
    ts = np.datetime64(T0.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]")
    n = len(rows)
    return pa.table(
        {
            "tx_id": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": ids,
            "event_ts": pa.array(ts, pa.timestamp("s", tz="UTC")),
            "amount_aed": np.full(n, 10.0),
            "channel": ["online"] * n,
            "country": ["AE"] * n,
        }
    )


def _count(rows: list[tuple[int, int]], customer: int, at: int) -> int:
    """Brute force: the customer's transactions in the 24 hours up to ``at``, inclusive."""
    return sum(1 for c, o in rows if c == customer and at - DAY <= o <= at)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(customers, offsets), min_size=1, max_size=40),
    queries=st.lists(st.tuples(customers, moments), min_size=1, max_size=20),
)
def test_the_24_hour_count_is_exact_at_any_moment(
    rows: list[tuple[int, int]], queries: list[tuple[int, int]]
) -> None:
    view = behaviour_view([NODE])
    frame = pa.table(
        {
            "customer_id": pa.array([c for c, _ in queries], pa.int64()),
            "event_ts": pa.array(
                [T0 + timedelta(seconds=o) for _, o in queries], pa.timestamp("s", tz="UTC")
            ),
        }
    )
    joined = point_in_time_join(
        frame, [ViewRequest(view, ("tx_count_24h",))], tables={NODE: _transactions(rows)}
    ).read_all()
    got = [v or 0 for v in joined["tx_count_24h"].to_pylist()]
    assert got == [_count(rows, c, o) for c, o in queries]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(customers, offsets), min_size=1, max_size=40),
    until=moments,
)
def test_materialized_rows_hold_the_count_at_the_watermark(
    rows: list[tuple[int, int]], until: int
) -> None:
    """What the online store gets at ``until`` is the count of the 24 hours before it."""
    view = behaviour_view([NODE])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = source_sql(con, view, None, {NODE: _transactions(rows)})
    until_us = int((T0 + timedelta(seconds=until)).timestamp() * 1_000_000)
    latest = latest_rows(con, src, view, start_us=None, until_us=until_us)
    written = dict(
        zip(latest["customer_id"].to_pylist(), latest["tx_count_24h"].to_pylist(), strict=True)
    )
    seen = {c for c, o in rows if o <= until}
    assert set(written) == seen
    for customer in seen:
        assert written[customer] == _count(rows, customer, until)


def test_request_fields_are_numbers_from_the_transaction() -> None:
    table = pa.table(
        {
            "tx_id": pa.array([1, 2, 3], pa.int64()),
            "customer_id": pa.array([7, 7, 8], pa.int64()),
            "event_ts": pa.array([T0, T0, T0 + timedelta(hours=1)], pa.timestamp("s", tz="UTC")),
            "amount_aed": [12.5, 900.0, 40.0],
            "hour": pa.array([0, 0, 1], pa.int32()),
            "channel": ["online", "pos", "online"],
            "country": ["AE", "GB", "AE"],
            "merchant_category": ["grocery", "electronics", "not-a-category"],
            "is_fraud": [False, True, False],
        }
    )
    fields = request_fields(table)
    assert tuple(fields.column_names) == REQUEST_FIELDS
    assert fields.to_pydict() == {
        "amount_aed": [12.5, 900.0, 40.0],
        "hour": [0, 0, 1],
        "online": [1, 0, 1],
        "foreign": [0, 1, 0],
        "merchant_category_code": [0, CATEGORIES.index("electronics"), -1],
    }
    frame = entity_frame(table)
    # A second before the transaction: its own row is not a feature of itself.
    assert frame["event_ts"].to_pylist()[0] == T0 - timedelta(seconds=1)
    assert frame.column_names == ["customer_id", "event_ts", "tx_id", *REQUEST_FIELDS, "is_fraud"]
