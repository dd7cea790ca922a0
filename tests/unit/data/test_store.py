"""Dataset versions: write, read back, identical content deduplicated, refs, cache, audit."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from ghaf.data import (
    dataset_parquet_path,
    get_dataset,
    list_versions,
    read_dataset,
    write_dataset,
)
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.lineage import downstream, upstream
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow


def _table(n: int = 1000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "cat": pa.array(rng.choice(["a", "b", "c"], n)),
        }
    )


def _audit_count(platform: Platform) -> int:
    with platform.read_session() as session:
        return session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()


def test_write_then_read_round_trips(platform: Platform) -> None:
    table = _table()
    before = _audit_count(platform)
    dv = write_dataset(
        platform, platform.admin(), "events", table, source="test", column_tags={"id": "public"}
    )
    assert _audit_count(platform) == before + 1
    assert (dv.name, dv.version, dv.num_rows) == ("events", 1, 1000)
    assert dv.schema.equals(table.schema)
    assert dv.column_tags == {"id": "public"}
    assert read_dataset(platform, "events").equals(table)
    assert get_dataset(platform, "events:1") == dv
    assert get_dataset(platform, "events:latest") == dv
    path = dataset_parquet_path(platform, "events:1")
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert dv.profile["columns"]["x"]["count"] == 1000


def test_identical_data_same_digest_no_new_version_or_blob(platform: Platform) -> None:
    first = write_dataset(platform, platform.admin(), "d", _table(), source="a")
    blobs = set(platform.artifacts.digests())
    again = write_dataset(platform, platform.admin(), "d", _table(), source="a")
    assert again == first
    assert set(platform.artifacts.digests()) == blobs
    changed = write_dataset(platform, platform.admin(), "d", _table(seed=1), source="b")
    assert changed.version == 2 and changed.digest != first.digest
    assert [v.version for v in list_versions(platform, "d")] == [1, 2]
    assert get_dataset(platform, "d").version == 2


def test_batches_stream_and_inputs_are_linked(platform: Platform) -> None:
    base = write_dataset(platform, platform.admin(), "base", _table(), source="t")
    batches = _table(200_000).to_batches(max_chunksize=10_000)
    dv = write_dataset(
        platform, platform.admin(), "derived", iter(batches), source="t", inputs=["base:1"]
    )
    assert dv.num_rows == 200_000
    assert dv.inputs == ("dataset:base:1",)
    assert upstream(platform, dv.node) == [base.node]
    assert downstream(platform, base.node) == [dv.node]


def test_refs_and_missing(platform: Platform) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        get_dataset(platform, "nope")
    write_dataset(platform, platform.admin(), "d", _table(), source="t")
    with pytest.raises(NotFoundError, match="d:7"):
        get_dataset(platform, "d:7")
    with pytest.raises(InvalidInputError, match="version"):
        get_dataset(platform, "d:x")
    with pytest.raises(InvalidInputError, match="name"):
        get_dataset(platform, "bad name")


def test_inconsistent_batches_leave_nothing(platform: Platform) -> None:
    good = pa.record_batch({"a": pa.array([1, 2])})
    bad = pa.record_batch({"b": pa.array([1, 2])})
    before = _audit_count(platform)
    with pytest.raises(InvalidInputError, match="'a' is missing"):
        write_dataset(platform, platform.admin(), "d", [good, bad], source="t")
    assert list_versions(platform, "d") == []
    assert list(platform.artifacts.digests()) == []
    assert _audit_count(platform) == before + 1  # the failure is audited
    assert not any((platform.settings.home / "tmp").iterdir())


def test_unknown_tag_column_is_refused(platform: Platform) -> None:
    with pytest.raises(InvalidInputError, match="'zz'"):
        write_dataset(
            platform, platform.admin(), "d", _table(), source="t", column_tags={"zz": "pii"}
        )
    assert list_versions(platform, "d") == []


def test_cache_is_refetched_when_tampered(platform: Platform) -> None:
    write_dataset(platform, platform.admin(), "d", _table(), source="t")
    path = dataset_parquet_path(platform, "d")
    path.chmod(0o600)
    path.write_bytes(b"garbage")
    again = dataset_parquet_path(platform, "d")
    assert pq.read_table(again).num_rows == 1000


def test_openlineage_event_written_to_default_file(platform: Platform) -> None:
    write_dataset(platform, platform.admin(), "d", _table(), source="file.csv")
    lines = (platform.settings.home / "lineage" / "openlineage.jsonl").read_text().splitlines()
    event = json.loads(lines[-1])
    assert event["eventType"] == "COMPLETE"
    assert event["outputs"][0]["name"] == "d:1"
    assert event["inputs"][0]["name"] == "file.csv"
