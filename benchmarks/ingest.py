"""Ingest a large CSV into a dataset version: peak RSS and throughput.

A CSV of the given size (full 5 GB, smoke ~50 MB) is written to disk in chunks
(never whole in memory), then ``ghaf.data.ingest`` runs on it in a fresh child
process: CSV parsed in blocks, Parquet written row group by row group, profiled
in the same pass, stored through the artifact store. The figures are the child's
peak RSS (``wait4``) and the CSV's MB per second. No anchor: the acceptance is
an absolute bound (peak RSS under 1 GiB at 5 GB). The file is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, run_child

SIZES = {"smoke": 50 * 10**6, "full": 5 * 10**9}
CHANNELS = ["pos", "online", "atm"]
COUNTRIES = ["AE", "SA", "IN", "GB", "US"]


def make_csv(path: Path, target_bytes: int, chunk_rows: int = 200_000) -> int:
    """Append chunks of transaction-like rows until the file reaches ``target_bytes``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    rng = np.random.default_rng(11)
    rows = 0
    with path.open("wb") as sink:
        writer: csv.CSVWriter | None = None
        while sink.tell() < target_bytes:
            n = chunk_rows
            ids = np.arange(rows, rows + n, dtype=np.int64)
            table = pa.table(
                {
                    "id": ids,
                    "customer": ids // 7,
                    "ts": pa.array(1_700_000_000 + ids, pa.timestamp("s", tz="UTC")),
                    "amount": np.round(rng.lognormal(4.5, 1.0, n), 2),
                    **{f"f{i}": np.round(rng.normal(size=n), 6) for i in range(6)},
                    "hour": rng.integers(0, 24, n, dtype=np.int32),
                    "channel": np.asarray(CHANNELS)[rng.integers(0, 3, n)],
                    "country": np.asarray(COUNTRIES)[rng.integers(0, 5, n)],
                    "flag": rng.random(n) < 0.1,
                    "email": pc.binary_join_element_wise(
                        pa.array(ids.astype(str)), pa.scalar("bank.ae"), "@"
                    ),
                }
            )
            if writer is None:
                writer = csv.CSVWriter(sink, table.schema)
            writer.write_table(table)
            rows += n
        if writer is not None:
            writer.close()
    return rows


def _ghaf(csv_path: str, home: str) -> None:
    from ghaf.data import ingest
    from ghaf.home import init_home
    from ghaf.settings import load_settings

    platform = init_home(load_settings(home=Path(home)))
    started = time.perf_counter()
    version = ingest(platform, platform.admin(), Path(csv_path), "bench_csv")
    seconds = time.perf_counter() - started
    platform.close()
    print(json.dumps({"seconds": seconds, "rows": version.num_rows, "size": version.size}))


def run(size_name: str) -> list[Figure]:
    target = SIZES[size_name]
    base = os.environ.get("GHAF_BENCH_DIR") or tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    if free < 3 * target + (1 << 30):
        raise RuntimeError(f"ingest benchmark needs ~{3 * target / 1e9:.1f} GB free in {base}")
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        path = Path(tmp) / "big.csv"
        rows = make_csv(path, target)
        size = path.stat().st_size
        ours, rss = run_child("benchmarks.ingest", "ghaf", str(path), str(Path(tmp) / "home"))
    assert ours["rows"] == rows, (ours, rows)
    seconds = float(ours["seconds"])
    return [
        Figure("ingest_csv_bytes", size / 1e6, "MB"),
        Figure("ingest_csv_rows", rows, "rows"),
        Figure("ingest_csv_peak_rss", rss, "MiB", higher_is_better=False),
        Figure("ingest_csv_throughput", size / 1e6 / seconds, "MB/s"),
        Figure("ingest_csv_wall", seconds, "s", higher_is_better=False),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "ghaf":
        _ghaf(sys.argv[2], sys.argv[3])
