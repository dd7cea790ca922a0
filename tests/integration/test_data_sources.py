"""Real systems: a SQL query on PostgreSQL, a Delta Lake table, an Iceberg table (SQL catalog)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text

from ghaf.data import ingest, read_dataset
from ghaf.errors import InvalidInputError
from ghaf.platform import Platform

TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": ["a", "b", None],
        "score": [1.5, 2.5, 3.5],
    }
)


@pytest.mark.service
def test_sql_query_on_postgresql(platform: Platform, postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id bigint, name text, score double precision)"))
        conn.execute(
            text("INSERT INTO t SELECT g, 'n' || g, g * 0.5 FROM generate_series(1, 120000) g")
        )
    engine.dispose()
    dv = ingest(
        platform, platform.admin(), f"sql:{postgres_url}", "pg", query="SELECT * FROM t ORDER BY id"
    )
    got = read_dataset(platform, dv.ref)
    assert got.num_rows == 120_000 and got.column("id").to_pylist()[:3] == [1, 2, 3]
    assert got.schema.field("score").type == pa.float64()
    assert "postgres" in dv.source
    with pytest.raises(InvalidInputError, match="query failed"):
        ingest(platform, platform.admin(), f"sql:{postgres_url}", "pg2", query="SELECT * FROM nope")


def test_delta_lake_table(platform: Platform, tmp_path: Path) -> None:
    from deltalake import write_deltalake

    uri = str(tmp_path / "delta")
    write_deltalake(uri, TABLE)
    write_deltalake(uri, TABLE.slice(0, 1), mode="append")
    latest = ingest(platform, platform.admin(), f"delta:{uri}", "delta")
    assert latest.num_rows == 4
    first = ingest(platform, platform.admin(), f"delta:{uri}@0", "delta0")
    assert read_dataset(platform, first.ref).sort_by("id").equals(TABLE)
    with pytest.raises(InvalidInputError, match="no Delta table"):
        ingest(platform, platform.admin(), f"delta:{tmp_path / 'none'}", "x")


def test_iceberg_table_in_sql_catalog(platform: Platform, tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    uri = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = SqlCatalog("ghaf", uri=uri, warehouse=(tmp_path / "wh").as_uri())
    catalog.create_namespace("bank")
    table = catalog.create_table("bank.scores", schema=TABLE.schema)
    table.append(TABLE)
    dv = ingest(platform, platform.admin(), f"iceberg:{uri}#bank.scores", "ice")
    got = read_dataset(platform, dv.ref)
    assert got.num_rows == 3 and sorted(got.column("id").to_pylist()) == [1, 2, 3]
    with pytest.raises(InvalidInputError, match="no Iceberg table"):
        ingest(platform, platform.admin(), f"iceberg:{uri}#bank.nope", "x")
