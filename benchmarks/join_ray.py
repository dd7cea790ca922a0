"""W2's point-in-time join on Ray (``get_historical_features(on="ray://HOST:PORT")``) beside
the local join (the anchor), measured in the same run: rows/s of entity rows joined.

The data is W2's generator (benchmarks/features.py) at its size: 100,000 entity rows
against 1,000,000 feature rows of 10 features, TTL 1 day (smoke: 5,000 against 20,000).
The cluster is a head and one worker node of one CPU each on 127.0.0.1
(tests/integration/ray_cluster.py), started here and stopped. The Ray figure is the whole
call: the driver reads and partitions the sources, ships Arrow to the tasks, gathers the
rows back in order; it is timed after one warm-up call (which starts the Ray workers),
and its result must equal the local join's cell for cell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, ray_loopback_env
from benchmarks.features import FEATURES, SIZES, _generate, _view


def run(size: str) -> list[Figure]:
    sizes = SIZES[size]
    workdir = Path(tempfile.mkdtemp(prefix="ghaf-bench-join-ray-"))
    ray_loopback_env(workdir)  # before Ray is imported
    from tests.integration.ray_cluster import start_cluster

    from ghaf.features.join_ray import ray_point_in_time_join
    from ghaf.features.offline import ViewRequest, point_in_time_join
    from ghaf.pipelines.ray import connect_ray

    try:
        _generate(workdir, sizes["entities"], sizes["per_entity"], sizes["rows"], sizes["days"])
        entities = workdir / "entities.parquet"
        _, view = _view(workdir)
        requests = [ViewRequest(view, tuple(FEATURES))]
        rows = sizes["rows"]
        load = os.getloadavg()[0]

        started = time.perf_counter()
        local = point_in_time_join(
            entities, requests, timestamp_column="event_timestamp"
        ).read_all()
        local_rate = rows / (time.perf_counter() - started)

        cluster_of = contextlib.contextmanager(start_cluster)
        with cluster_of() as cluster:
            ray = connect_ray(cluster.address)
            try:
                cluster.wait_for_nodes(2)

                def on_ray() -> tuple[float, set[str]]:
                    started = time.perf_counter()
                    joined = ray_point_in_time_join(
                        entities, requests, cluster.address, timestamp_column="event_timestamp"
                    )
                    seconds = time.perf_counter() - started
                    if not joined.table.equals(local):
                        raise AssertionError("the join on Ray differs from the local join")
                    return rows / seconds, set(joined.nodes)

                on_ray()  # warm-up: starts a Ray worker on each node
                ray_rate, nodes = on_ray()
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    label = f"W2 {rows:,} entity rows x {sizes['entities'] * sizes['per_entity']:,} feature rows"
    return [
        Figure(
            f"PIT join on Ray, 2 nodes x 1 CPU ({len(nodes)} nodes used), {label}, rows/s",
            ray_rate,
            "rows/s",
            f"local DuckDB ASOF join ({os.cpu_count()} threads), same run",
            local_rate,
        ),
        Figure("load average (1 min) before the joins", load, "", None, None, False),
    ]
