"""A materialization killed with SIGKILL leaves the previous state or the new one, never a mix.

The kill is made to land mid-write for certain: the child's online store pauses after
writing half the rows inside its transaction and says so; only then is it killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.features import Entity, FeatureView, Field
from ghaf.features.base import ViewLayout
from ghaf.features.materialize import materialize
from ghaf.features.online_sqlite import SqliteOnlineStore
from ghaf.features.registry import apply_definitions
from ghaf.platform import Platform
from ghaf.testing.online_store import T0, TS

ENTITIES = 150_000

CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime, UTC
    from ghaf.settings import load_settings
    from ghaf.platform import Platform
    from ghaf.features.materialize import materialize
    import builtins, time
    import ghaf.features.online_sqlite as online

    def halfway(*columns, strict=False):
        # the store's write zips its columns into rows: pause for ever at half of them
        rows = builtins.zip(*columns, strict=strict)
        half = len(columns[0]) // 2 if columns and hasattr(columns[0], "__len__") else -1
        for i, row in enumerate(rows):
            if i == half and half > 1000:
                print("half written", flush=True)
                time.sleep(3600)
            yield row

    online.zip = halfway
    with Platform(load_settings(home=sys.argv[1])) as platform:
        print("start", flush=True)
        materialize(platform, platform.admin(), full=True,
                    until=datetime.fromisoformat(sys.argv[2]))
        print("done", flush=True)
    """
)


def _write_source(path: Path, generation: int) -> None:
    ids = np.arange(ENTITIES, dtype=np.int64)
    stamp = T0 + timedelta(hours=generation)
    table = pa.table(
        {
            "customer_id": ids,
            "event_ts": pa.array([stamp] * ENTITIES, TS),
            "score": np.full(ENTITIES, float(generation)),
        }
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _generations(store: SqliteOnlineStore, layout: ViewLayout) -> set[float]:
    return set(store.read_all(layout).column("score").to_pylist())


@pytest.mark.slow
def test_sigkill_mid_materialization_leaves_old_or_new(platform: Platform, tmp_path: Path) -> None:
    source = tmp_path / "scores.parquet"
    _write_source(source, 1)
    customer = Entity("customer", ("customer_id",))
    view = FeatureView("scores", (customer,), str(source), (Field("score"),))
    apply_definitions(platform, platform.admin(), [customer, view])
    materialize(platform, platform.admin(), full=True, until=T0 + timedelta(days=1))
    url = platform.settings.resolved_online_store_url
    store = SqliteOnlineStore(url)
    layout = ViewLayout.of(view)
    assert _generations(store, layout) == {1.0}
    for attempt in range(2):
        _write_source(source, attempt + 2)
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                str(platform.settings.home),
                (T0 + timedelta(days=2 + attempt)).isoformat(),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "start"
        assert child.stdout.readline().strip() == "half written"  # inside the transaction
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
        child.stdout.close()
        # killed mid-write: the half-written generation is gone, the previous one is whole
        assert _generations(store, layout) == {1.0}
        assert store.read_all(layout).num_rows == ENTITIES
    store.close()
    # The store is still usable after the kills.
    materialize(platform, platform.admin(), full=True, until=T0 + timedelta(days=30))
    check = SqliteOnlineStore(url)
    assert _generations(check, layout) == {3.0}
    check.close()
