"""A materialization killed with SIGKILL leaves the previous state or the new one, never a mix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
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
    outcomes = []
    for attempt, delay in enumerate((0.15, 0.35, 0.6, 1.0)):
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
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        seen = _generations(store, layout)
        assert len(seen) == 1, f"a mix of generations after kill at {delay}s: {seen}"
        assert store.read_all(layout).num_rows == ENTITIES
        outcomes.append(seen.pop())
    store.close()
    # The store is still usable after the kills.
    materialize(platform, platform.admin(), full=True, until=T0 + timedelta(days=30))
    check = SqliteOnlineStore(url)
    assert _generations(check, layout) == {5.0}
    check.close()
    print("generations seen after each kill:", outcomes)
