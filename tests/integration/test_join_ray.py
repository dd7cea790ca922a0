"""The point-in-time join on Ray equals the local join cell for cell: on a W2-shaped case
read from the dataset store (through ``get_historical_features(on=...)``, the library join
and ``ghaf features retrieve --on``) and on hypothesis-generated cases with several views,
entities spread over partitions, duplicates, ties, out-of-order rows and missing entities.
Tasks run on both nodes of the shared loopback cluster (``ray_cluster.py``). A bad ``--on``
is tested without Ray: tests/unit/features/test_join_on.py."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmarks.features import FEATURES, _generate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ghaf.cli.main import app
from ghaf.data import write_dataset
from ghaf.features import join_ray
from ghaf.features.definitions import Entity, FeatureView, Field
from ghaf.features.join_ray import RayJoin, ray_point_in_time_join
from ghaf.features.offline import ViewRequest, point_in_time_join
from ghaf.features.registry import apply_definitions
from ghaf.features.retrieval import dataset_resolver, get_historical_features
from ghaf.platform import Platform
from tests.integration.ray_cluster import GROUP, RayCluster

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.xdist_group(GROUP),
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def cluster(ray_cluster: RayCluster) -> Iterator[tuple[RayCluster, set[str]]]:
    """This module's driver, connected once: (the cluster, its two node ids)."""
    from ghaf.pipelines.ray import connect_ray

    ray = connect_ray(ray_cluster.address)
    nodes = {str(n["NodeID"]) for n in ray_cluster.wait_for_nodes(2)}
    try:
        yield ray_cluster, nodes
    finally:
        ray.shutdown()
        gc.collect()


def test_w2_on_ray_equals_local_at_every_door(
    cluster: tuple[RayCluster, set[str]],
    platform: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray_cluster, nodes = cluster
    # W2's generator and view at a small size, its features read from the dataset store.
    _generate(tmp_path, entities=600, per_entity=20, rows=4_000, days=10)
    admin = platform.admin()
    write_dataset(platform, admin, "w2", pq.read_table(tmp_path / "features.parquet"), source="t")
    entity = Entity("entity", ("entity_id",))
    view = FeatureView(
        "w2",
        (entity,),
        "dataset:w2",
        tuple(Field(f) for f in FEATURES),
        timestamp_field="event_timestamp",
        ttl=timedelta(days=1),
    )
    apply_definitions(platform, admin, [entity, view])
    frame = pq.read_table(tmp_path / "entities.parquet")
    refs = [f"w2:{f}" for f in FEATURES]

    local = get_historical_features(platform, frame, refs, timestamp_column="event_timestamp")
    expected = local.read_all()
    assert expected.num_rows == 4_000
    nulls = expected.column("f0").null_count
    assert 0 < nulls < 4_000  # some rows have no feature row inside the TTL

    # Each door must really join on Ray: record where the real join ran (a spy, not a stub).
    ran_on: list[set[str]] = []

    def recorded(*args: Any, **kwargs: Any) -> RayJoin:
        joined = ray_point_in_time_join(*args, **kwargs)
        ran_on.append(set(joined.nodes))
        return joined

    monkeypatch.setattr(join_ray, "ray_point_in_time_join", recorded)
    on_ray = get_historical_features(
        platform, frame, refs, timestamp_column="event_timestamp", on=f"ray://{ray_cluster.address}"
    ).read_all()
    assert on_ray.schema == expected.schema
    assert on_ray.equals(expected)
    assert ran_on == [nodes]  # on both nodes (partitions: twice the cluster's CPUs)

    joined = ray_point_in_time_join(
        frame,
        [ViewRequest(view, tuple(FEATURES))],
        ray_cluster.address,
        timestamp_column="event_timestamp",
        resolver=dataset_resolver(platform),
        partitions=6,
    )
    assert joined.table.equals(expected)
    assert len(joined.nodes) == 6
    assert set(joined.nodes) == nodes  # every node joined some partition

    # The CLI door, in this process (a fresh driver would start Ray workers of its own):
    # the saved training set is the local join.
    entities = tmp_path / "entities.parquet"
    retrieve = ["--home", str(platform.settings.home), "features", "retrieve", "train"]
    retrieve += ["--features", ",".join(refs), "--entities", str(entities)]
    retrieve += ["--timestamp-column", "event_timestamp", "-o", "json"]
    out = tmp_path / "train.parquet"
    on = ["--on", f"ray://{ray_cluster.address}", "--download", str(out)]
    done = CliRunner().invoke(app, [*retrieve, *on])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["training_set"]["rows"] == 4_000
    assert pq.read_table(out).equals(expected)
    assert ran_on == [nodes, nodes]


CUSTOMER = Entity("customer", ("cid",))
REGION = Entity("region", ("region",))
minutes = st.integers(min_value=0, max_value=30)
REGIONS = ["north", "south", "east", "west", "nowhere"]
customer_rows = st.lists(
    st.tuples(st.integers(1, 10), minutes, st.integers(0, 10), st.floats(-5, 5)), max_size=40
)
region_rows = st.lists(
    st.tuples(st.sampled_from(REGIONS[:4]), minutes, st.integers(0, 99)), max_size=15
)
entity_rows = st.lists(
    st.tuples(st.integers(1, 12), st.sampled_from(REGIONS), minutes, st.none() | st.integers(0, 1)),
    min_size=1,
    max_size=40,
)


def _at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def _case(
    customers: list[tuple[int, int, int, float]],
    regions: list[tuple[str, int, int]],
    entities: list[tuple[int, str, int, int | None]],
) -> tuple[pa.Table, list[ViewRequest], dict[str, pa.Table]]:
    """Three views: one with a created timestamp and a TTL, one without either, and one
    keyed by another entity (region) than the first (cid), which sets the partitions."""
    created = FeatureView(
        "spend",
        (CUSTOMER,),
        "mem:spend",
        (Field("x"),),
        created_timestamp_field="created_ts",
        ttl=timedelta(minutes=8),
    )
    plain = FeatureView("orders", (CUSTOMER,), "mem:spend", (Field("n_x", dtype="float64"),))
    regional = FeatureView("weather", (REGION,), "mem:weather", (Field("temp", dtype="int64"),))
    tables = {
        "mem:spend": pa.table(
            {
                "cid": pa.array([r[0] for r in customers], pa.int64()),
                "event_ts": pa.array([_at(r[1]) for r in customers], TS),
                "created_ts": pa.array([_at(r[1] + r[2]) for r in customers], TS),
                "x": pa.array([r[3] for r in customers], pa.float64()),
                "n_x": pa.array([-r[3] for r in customers], pa.float64()),
            }
        ),
        "mem:weather": pa.table(
            {
                "region": pa.array([r[0] for r in regions], pa.string()),
                "event_ts": pa.array([_at(r[1]) for r in regions], TS),
                "temp": pa.array([r[2] for r in regions], pa.int64()),
            }
        ),
    }
    frame = pa.table(
        {
            # int32 against the views' int64: the join (and the partitioning) must match
            # keys by value across integer widths.
            "cid": pa.array([e[0] for e in entities], pa.int32()),
            "region": pa.array([e[1] for e in entities], pa.string()),
            "event_ts": pa.array([_at(e[2]) for e in entities], TS),
            "label": pa.array([e[3] for e in entities], pa.int64()),
        }
    )
    requests = [
        ViewRequest(created, ("x",)),
        ViewRequest(plain, ("n_x",)),
        ViewRequest(regional, ("temp",)),
    ]
    return frame, requests, tables


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(customers=customer_rows, regions=region_rows, entities=entity_rows)
@example(  # ties at one instant, rows out of order, an entity with no rows, a TTL miss
    customers=[(3, 10, 0, 1.0), (1, 5, 0, 2.0), (3, 10, 0, 3.0), (1, 20, 9, 4.0), (2, 1, 0, 5.0)],
    regions=[("north", 10, 7), ("north", 10, 8), ("south", 30, 1)],
    entities=[(3, "north", 10, 1), (1, "south", 25, None), (11, "east", 3, 0), (2, "north", 30, 1)]
    * 3,
)
def test_generated_joins_on_ray_equal_local(
    cluster: tuple[RayCluster, set[str]],
    customers: list[tuple[int, int, int, float]],
    regions: list[tuple[str, int, int]],
    entities: list[tuple[int, str, int, int | None]],
) -> None:
    ray_cluster, _ = cluster
    frame, requests, tables = _case(customers, regions, entities)
    expected = point_in_time_join(
        frame, requests, tables=tables, full_feature_names=True
    ).read_all()
    joined = ray_point_in_time_join(
        frame, requests, ray_cluster.address, tables=tables, full_feature_names=True, partitions=4
    )
    assert joined.table.schema == expected.schema
    assert joined.table.equals(expected), (joined.table.to_pylist(), expected.to_pylist())
    # Entity rows went to several partitions: hash(cid) % 4 puts at most 4 of the cids
    # 1..12 in one partition, so 5 distinct cids span at least two.
    cids = {e[0] for e in entities}
    assert len(joined.nodes) >= 2 or len(cids) < 5
