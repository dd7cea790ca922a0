"""W2 (offline PIT join, materialization) and W3 (online lookups, HTTP) beside hand-written
DuckDB / sqlite3 baselines and a minimal Starlette dict app, measured in the same run."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.anchor_venvs import VENVS, ensure
from benchmarks.common import Figure, run_child, run_command

# Feature rows are spread over ``days`` (2 per entity per day). WORKLOADS.md leaves the
# range open; ANCHORS.md's W2 figures (Feast keeping 86,173 of 100,000 rows, 13,827 with
# no match inside the 1-day TTL) imply that density: 50 days gives ~13,850 such rows
# with this generator, where 30 days gave 4,362. The reference generator itself is not
# published, so the exact count differs by sampling.
SIZES = {
    "smoke": {
        "entities": 1_000,
        "per_entity": 20,
        "days": 10,
        "rows": 5_000,
        "calls": 300,
        "http": 300,
    },
    "full": {
        "entities": 10_000,
        "per_entity": 100,
        "days": 50,
        "rows": 100_000,
        "calls": 2_000,
        "http": 3_000,
    },
}
FEATURES = [f"f{i}" for i in range(10)]


def _generate(root: Path, entities: int, per_entity: int, rows: int, days: int = 50) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    span = days * 86_400
    ids = np.repeat(np.arange(entities, dtype=np.int64), per_entity)
    offsets = np.sort(rng.integers(0, span, (entities, per_entity)), axis=1).ravel()
    columns: dict[str, Any] = {
        "entity_id": ids,
        "event_timestamp": pa.array(
            start + (offsets * 1_000_000).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")
        ),
    }
    for name in FEATURES:
        columns[name] = rng.random(ids.size)
    pq.write_table(pa.table(columns), root / "features.parquet")
    entity_ts = start + (rng.integers(0, span, rows) * 1_000_000).astype("timedelta64[us]")
    frame = pa.table(
        {
            "entity_id": rng.integers(0, entities, rows).astype(np.int64),
            "event_timestamp": pa.array(entity_ts, pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(frame, root / "entities.parquet")


def _view(root: Path) -> Any:
    from datetime import timedelta

    from ghaf.features import Entity, FeatureView, Field

    entity = Entity("entity", ("entity_id",))
    return entity, FeatureView(
        "w2",
        (entity,),
        str(root / "features.parquet"),
        tuple(Field(f) for f in FEATURES),
        timestamp_field="event_timestamp",
        ttl=timedelta(days=1),
    )


def _handwritten_sql(root: Path) -> str:
    cases = ", ".join(
        f"CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 1 DAY THEN f.{f} END AS {f}"
        for f in FEATURES
    )
    return (
        f"SELECT e.entity_id, e.event_timestamp, {cases} FROM "
        f"(SELECT *, row_number() OVER () AS r FROM read_parquet('{root}/entities.parquet')) e "
        f"ASOF LEFT JOIN read_parquet('{root}/features.parquet') f "
        f"ON e.entity_id = f.entity_id AND e.event_timestamp >= f.event_timestamp"
    )


def _child(op: str, root_name: str) -> None:
    """One measured operation in a fresh process (its peak RSS is its own)."""
    root = Path(root_name)
    result: dict[str, Any] = {}
    if op == "w2_duckdb":
        import duckdb
        import pyarrow.parquet as pq

        started = time.perf_counter()
        table = duckdb.connect().sql(_handwritten_sql(root)).to_arrow_table()
        result["seconds"] = time.perf_counter() - started
        pq.write_table(table, root / "out_duckdb.parquet")
    elif op == "w2_ghaf":
        import pyarrow.parquet as pq

        from ghaf.features.offline import ViewRequest, point_in_time_join

        _, view = _view(root)
        started = time.perf_counter()
        reader = point_in_time_join(
            root / "entities.parquet",
            [ViewRequest(view, tuple(FEATURES))],
            timestamp_column="event_timestamp",
        )
        table = reader.read_all()
        result["seconds"] = time.perf_counter() - started
        pq.write_table(table, root / "out_ghaf.parquet")
    elif op == "mat_sqlite":
        import duckdb

        started = time.perf_counter()
        cols = ", ".join(FEATURES)
        rows = (
            duckdb.connect()
            .sql(
                f"SELECT entity_id, epoch_us(event_timestamp), {cols} FROM "
                f"read_parquet('{root}/features.parquet') QUALIFY row_number() OVER "
                f"(PARTITION BY entity_id ORDER BY event_timestamp DESC) = 1"
            )
            .fetchall()
        )
        conn = sqlite3.connect(root / "hand.db", isolation_level=None)
        conn.execute(f"CREATE TABLE t (k INTEGER PRIMARY KEY, ev INTEGER, {cols})")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO t VALUES ({','.join('?' * 12)})", rows)
        conn.execute("COMMIT")
        result["seconds"] = time.perf_counter() - started
    elif op == "mat_ghaf":
        from ghaf.features.materialize import materialize
        from ghaf.features.registry import apply_definitions
        from ghaf.home import init_home
        from ghaf.settings import load_settings

        platform = init_home(load_settings(home=root / "home"))
        apply_definitions(platform, platform.admin(), list(_view(root)))
        started = time.perf_counter()
        materialize(platform, platform.admin(), ["w2"], full=True)
        result["seconds"] = time.perf_counter() - started
        platform.close()
    print(json.dumps(result))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99) - 1]


def _w3_inprocess(root: Path, calls: int, entities: int) -> dict[str, float]:
    """Ghaf's in-process read vs a bare sqlite3 primary-key SELECT, same keys, interleaved.

    Each size is warmed up first (connection, prepared statements, plan, pages), then
    measured in three rounds of ``calls``; each percentile is the median of the rounds
    (one round's p99 is its 20th-worst sample, which one stray scheduler hiccup on this
    shared 2-core machine decides).
    """
    import random

    from ghaf.features.online import online_reader
    from ghaf.home import init_home
    from ghaf.settings import load_settings

    platform = init_home(load_settings(home=root / "home"))
    reader = online_reader(platform)
    refs = [f"w2:{f}" for f in FEATURES]
    db = sqlite3.connect(root / "home" / "online.db")
    rng = random.Random(7)
    out: dict[str, float] = {}
    sql1 = f"SELECT __ev, {', '.join(FEATURES)} FROM fv_w2 WHERE __k = ?"
    for n in (1, 100):
        marks = ",".join("?" * n)
        sql_n = f"SELECT __k, {', '.join(FEATURES)} FROM fv_w2 WHERE __k IN ({marks})"

        def ghaf_read(keys: list[int]) -> None:
            reader.get_online_features({"entity_id": keys}, refs)

        def raw_read(keys: list[int], n: int = n, sql_n: str = sql_n) -> None:
            if n == 1:
                db.execute(sql1, keys).fetchone()
            else:
                db.execute(sql_n, keys).fetchall()

        rounds: dict[str, list[tuple[float, float]]] = {"ghaf": [], "sqlite3": []}
        for round_no in range(4):  # round 0 is the warm-up
            samples: dict[str, list[float]] = {"ghaf": [], "sqlite3": []}
            for _ in range(calls if round_no else 200):
                keys = [rng.randrange(entities) for _ in range(n)]
                for label, read in (("ghaf", ghaf_read), ("sqlite3", raw_read)):
                    started = time.perf_counter()
                    read(keys)
                    samples[label].append(time.perf_counter() - started)
            if round_no:
                for label in rounds:
                    rounds[label].append(_percentiles(samples[label]))
        for label, measured in rounds.items():
            out[f"{label}_{n}_p50"] = statistics.median(p50 for p50, _ in measured) * 1e6
            out[f"{label}_{n}_p99"] = statistics.median(p99 for _, p99 in measured) * 1e6
    platform.close()
    return out


DICT_APP = """
import orjson, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
DATA = {i: [0.5] * 10 for i in range(int(sys.argv[2]))}
async def lookup(request):
    body = orjson.loads(await request.body())
    keys = body["entities"]["entity_id"]
    return Response(orjson.dumps({"features": [DATA.get(k) for k in keys]}),
                    media_type="application/json")
app = Starlette(routes=[Route("/get-online-features", lookup, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            loop="uvloop", http="httptools")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _load(
    port: int, body: bytes, total: int, concurrency: int, token: str = ""
) -> tuple[list[float], int]:
    """A minimal keep-alive HTTP/1.1 client: ``concurrency`` connections, ``total`` requests."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        f"application/json\r\n{auth}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    per = total // concurrency

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def _wait(port: int) -> None:
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def _bench_token(home: Path) -> str:
    """A token allowed features.read: ``ghaf features serve`` answers nobody without one."""
    from ghaf.platform import Platform
    from ghaf.settings import load_settings
    from ghaf.testing.people import mint

    with Platform(load_settings(home=home)) as platform:
        return mint(platform, "svc-bench", ["model_server"], kind="service")


def _w3_http(root: Path, total: int, entities: int) -> dict[str, float]:
    token = _bench_token(root / "home")
    ghaf_port, dict_port = _free_port(), _free_port()
    env = {**os.environ, "GHAF_HOME": str(root / "home")}
    ghaf_bin = str(Path(sys.executable).parent / "ghaf")
    servers = [
        subprocess.Popen([ghaf_bin, "features", "serve", "--port", str(ghaf_port)], env=env),
        subprocess.Popen([sys.executable, "-c", DICT_APP, str(dict_port), str(entities)]),
    ]
    out: dict[str, float] = {}
    try:
        _wait(ghaf_port)
        _wait(dict_port)
        body = json.dumps(
            {"entities": {"entity_id": [7]}, "features": [f"w2:{f}" for f in FEATURES]}
        ).encode()
        for concurrency in (1, 16):
            for label, port in (("ghaf", ghaf_port), ("starlette", dict_port)):
                auth = token if label == "ghaf" else ""
                asyncio.run(_load(port, body, 200, concurrency, auth))  # warm-up
                latencies, errors = asyncio.run(_load(port, body, total, concurrency, auth))
                out[f"{label}_c{concurrency}_p50"] = statistics.median(latencies) * 1e6
                out[f"{label}_c{concurrency}_errors"] = errors
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    return out


def _feast_status() -> str:
    """Create the Feast venv when missing; say whether Feast 0.67 could be installed."""
    python = ensure("feast")
    if python is None:
        return "not installable here"
    probe = subprocess.run(
        [str(python), "-c", "import feast; print(feast.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else "not installable here"


FEAST_RUNNER = Path(__file__).with_name("_feast_runner.py")
FEAST = "feast-0.67"


def _feast_child(op: str, root: Path, *extra: str) -> tuple[dict[str, Any], float]:
    """One Feast operation in a fresh process of the Feast venv: (its JSON, peak RSS MiB)."""
    command = [str(VENVS / "feast" / "bin" / "python"), str(FEAST_RUNNER), op, str(root), *extra]
    result, rss = run_command(command, quiet_stderr=True)
    return result, rss


def _feast_figures(root: Path, size: dict[str, int], ours: dict[str, float]) -> list[Figure]:
    """Feast 0.67 on the same files, beside Ghaf's figures of this run (``ours``)."""
    figures: list[Figure] = []
    _feast_child("apply", root)
    for store, label in (
        ("dask", "default (dask) offline store"),
        ("duckdb", "duckdb offline store"),
    ):
        got, rss = _feast_child(f"w2_{store}", root)
        if "unavailable" in got:
            print(json.dumps({"name": f"w2_{FEAST}_{store}", "unavailable": got["unavailable"]}))
            continue
        anchor = f"{FEAST} {label}"
        figures += [
            Figure(f"w2_wall_s_vs_feast_{store}", ours["w2_s"], "s", anchor, got["seconds"], False),
            Figure(
                f"w2_x_faster_than_feast_{store}",
                got["seconds"] / ours["w2_s"],
                "x (issue: >= 15 vs default)" if store == "dask" else "x",
            ),
            Figure(f"w2_peak_rss_vs_feast_{store}", ours["w2_rss"], "MiB", anchor, rss, False),
            Figure(f"w2_rows_out_vs_feast_{store}", size["rows"], "rows", anchor, got["rows"]),
            Figure(
                f"w2_null_rows_vs_feast_{store}", ours["w2_nulls"], "rows", anchor, got["null_rows"]
            ),
        ]
    got, _ = _feast_child("materialize", root)
    anchor = f"{FEAST} materialize in-process to SQLite"
    figures += [
        Figure("materialize_s_vs_feast", ours["mat_s"], "s", anchor, got["seconds"], False),
        Figure(
            "materialize_x_faster_than_feast",
            got["seconds"] / ours["mat_s"],
            "x (issue: >= 5)",
        ),
    ]
    got, _ = _feast_child("w3", root, str(size["calls"]), str(size["entities"]))
    for n in (1, 100):
        for q in ("p50", "p99"):
            figures.append(
                Figure(
                    f"w3_sqlite_{n}_{q}_vs_feast",
                    ours[f"w3_{n}_{q}"],
                    "us",
                    f"{FEAST} SQLite online store",
                    got[f"{n}_{q}"],
                    False,
                )
            )
    return figures


def run(size_name: str) -> list[Figure]:
    import pyarrow.parquet as pq

    size = SIZES[size_name]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        root = Path(tmp)
        _generate(root, size["entities"], size["per_entity"], size["rows"], size["days"])
        me = "benchmarks.features"
        # Paired runs, median of each: one run on this shared machine can be off by 2x.
        pairs = [
            (run_child(me, "w2_duckdb", str(root)), run_child(me, "w2_ghaf", str(root)))
            for _ in range(3)
        ]
        hand = {"seconds": statistics.median(h[0]["seconds"] for h, _ in pairs)}
        hand_rss = statistics.median(h[1] for h, _ in pairs)
        ours = {"seconds": statistics.median(o[0]["seconds"] for _, o in pairs)}
        ours_rss = statistics.median(o[1] for _, o in pairs)
        got = pq.read_table(root / "out_ghaf.parquet")
        ref = pq.read_table(root / "out_duckdb.parquet")
        # DuckDB names the zone differently; compare the instants, not the zone label.
        ts_type = got.schema.field("event_timestamp").type
        ref = ref.set_column(
            1, "event_timestamp", ref.column("event_timestamp").cast(ts_type)
        ).sort_by([("entity_id", "ascending"), ("event_timestamp", "ascending")])
        mine = got.sort_by([("entity_id", "ascending"), ("event_timestamp", "ascending")])
        equal = mine.select(ref.column_names).equals(ref)
        nulls = got.column("f0").null_count
        rows = size["rows"]
        figures += [
            Figure(
                "w2_wall_s",
                ours["seconds"],
                "s",
                "hand-written DuckDB ASOF",
                hand["seconds"],
                False,
            ),
            Figure("w2_peak_rss", ours_rss, "MiB", "hand-written DuckDB ASOF", hand_rss, False),
            Figure(
                "w2_rows_per_s",
                rows / ours["seconds"],
                "rows/s",
                "hand-written DuckDB ASOF",
                rows / hand["seconds"],
            ),
            Figure("w2_equal_to_reference", float(equal), "bool", "cell-for-cell", 1.0),
            Figure(
                "w2_null_rows",
                float(nulls),
                "rows",
                "reference null rows",
                float(ref.column("f0").null_count),
            ),
        ]
        mat_hand, _ = run_child(me, "mat_sqlite", str(root))
        mat, _ = run_child(me, "mat_ghaf", str(root))
        figures.append(
            Figure(
                "materialize_s",
                mat["seconds"],
                "s",
                "hand-written latest→sqlite",
                mat_hand["seconds"],
                False,
            )
        )
        w3 = _w3_inprocess(root, size["calls"], size["entities"])
        for n in (1, 100):
            for q in ("p50", "p99"):
                figures.append(
                    Figure(
                        f"w3_sqlite_{n}_{q}",
                        w3[f"ghaf_{n}_{q}"],
                        "us",
                        "plain sqlite3",
                        w3[f"sqlite3_{n}_{q}"],
                        False,
                    )
                )
        http = _w3_http(root, size["http"], size["entities"])
        for c in (1, 16):
            figures.append(
                Figure(
                    f"w3_http_c{c}_p50",
                    http[f"ghaf_c{c}_p50"],
                    "us",
                    "Starlette dict app",
                    http[f"starlette_c{c}_p50"],
                    False,
                )
            )
            figures.append(Figure(f"w3_http_c{c}_errors", http[f"ghaf_c{c}_errors"], "errors"))
        # Feast only in the full size: smoke (CI) neither creates nor uses its venv.
        if size_name == "full":
            status = _feast_status()
            if status != "0.67.0":
                print(json.dumps({"name": FEAST, "status": status}))
            else:
                ours_now = {
                    "w2_s": ours["seconds"],
                    "w2_rss": ours_rss,
                    "w2_nulls": float(nulls),
                    "mat_s": mat["seconds"],
                    **{f"w3_{k.removeprefix('ghaf_')}": v for k, v in w3.items() if "ghaf" in k},
                }
                figures += _feast_figures(root, size, ours_now)
        shutil.rmtree(root / "home", ignore_errors=True)
    return figures


if __name__ == "__main__":
    _child(*sys.argv[1:])
