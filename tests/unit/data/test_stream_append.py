"""Stream ingestion appends (issue 22, item 5): each micro-batch is one new encrypted part.

What a user relies on: a version reads as every batch up to it, in order (checked against
pyarrow and DuckDB as references, and by hypothesis for any sequence of batches); a
micro-batch stores its own rows only, so the bytes written per batch stay flat however
long the stream; a version written whole before appends reads as one part; the digest
covers the parts list (a tampered part list is refused); contracts judge each batch, and
uniqueness the whole dataset.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from ghaf.data import get_dataset, list_versions, read_dataset, write_dataset
from ghaf.data.ingest import ContractViolationError
from ghaf.data.profile import profile_table
from ghaf.data.store import dataset_parquet_path, dataset_parquet_paths, version_parts
from ghaf.data.stream import ingest_stream, write_micro_batch
from ghaf.data.tables import DatasetPartRow
from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.home import init_home
from ghaf.metadata.engine import GOVERNED
from ghaf.platform import Platform
from ghaf.settings import load_settings

BATCHES = 20
ROWS = 50
_NAMES = itertools.count()


def _records(batch: int, rows: int = ROWS) -> list[dict[str, object]]:
    return [
        {"id": batch * 1_000 + i, "amount": float((batch * 7 + i) % 13), "tag": f"t{i % 3}"}
        for i in range(rows)
    ]


def _write(platform: Platform, name: str, records: list[dict[str, object]], **kw: object) -> int:
    keys = [str(r["id"]) for r in records]
    version = write_micro_batch(platform, platform.admin(), name, records, keys, source="t", **kw)
    assert version is not None
    return version.version


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    settings_ = load_settings(home=tmp_path_factory.mktemp("streams") / "home")
    with init_home(settings_) as platform:
        yield platform


@pytest.fixture(scope="module")
def twenty(home: Platform) -> list[int]:
    """Twenty micro-batches through the consumer loop on the in-process bus."""
    for batch in range(BATCHES):
        for record in _records(batch):
            home.events.publish("test.twenty", record, msg_id=f"m{record['id']}")
        versions = ingest_stream(
            home,
            home.admin(),
            "test.twenty",
            "twenty",
            consumer="c",
            batch_size=ROWS,
            max_batches=1,
        )
        assert len(versions) == 1
    return [v.size for v in list_versions(home, "twenty")]


def test_twenty_micro_batches_write_twenty_parts_and_each_version_reads_its_rows(
    home: Platform, twenty: list[int]
) -> None:
    versions = list_versions(home, "twenty")
    assert [v.version for v in versions] == list(range(1, BATCHES + 1))
    latest = versions[-1]
    parts = version_parts(home, latest)
    assert len(parts) == BATCHES and len({p.digest for p in parts}) == BATCHES
    assert [p.num_rows for p in parts] == [ROWS] * BATCHES
    for version in versions:
        n = version.version
        assert [p.digest for p in version_parts(home, version)] == [p.digest for p in parts[:n]]
        table = read_dataset(home, version.ref)
        expected = [r["id"] for b in range(n) for r in _records(b)]
        assert table.column("id").to_pylist() == expected, version.ref
        assert version.num_rows == n * ROWS == table.num_rows
    # DuckDB over the parts and the joined single file agree with pyarrow.
    files = [str(p) for p in dataset_parquet_paths(home, latest.ref)]
    sql = f"SELECT count(*), sum(amount) FROM read_parquet({files})"
    summed = duckdb.connect().execute(sql).fetchall()[0]
    table = read_dataset(home, latest.ref)
    assert summed == (table.num_rows, pytest.approx(sum(table.column("amount").to_pylist())))
    joined = pq.read_table(dataset_parquet_path(home, latest.ref))
    assert joined.equals(table)


def test_bytes_written_per_micro_batch_stay_flat(home: Platform, twenty: list[int]) -> None:
    parts = version_parts(home, get_dataset(home, "twenty"))
    first, last = parts[0].size, parts[-1].size
    assert last <= 1.5 * first  # a rewrite would store ~20x the first batch by the end
    stored = sum(p.size for p in parts)
    assert twenty[-1] == stored  # the version's size is its parts', each stored once
    rewrites = sum(twenty)  # what rewriting the dataset at every batch would have stored
    assert stored * 5 < rewrites


def test_the_profile_of_an_appended_version_is_the_whole_dataset_s(
    home: Platform, twenty: list[int]
) -> None:
    version = get_dataset(home, "twenty")
    reference = profile_table(read_dataset(home, version.ref))["columns"]
    merged = version.profile["columns"]
    for column in ("id", "amount"):
        for key in ("count", "nulls", "min", "max", "mean", "std"):
            assert merged[column][key] == pytest.approx(reference[column][key]), (column, key)
    assert version.profile["rows"] == BATCHES * ROWS
    median = merged["amount"]["quantiles"]["0.5"]
    assert math.isclose(median, reference["amount"]["quantiles"]["0.5"], abs_tol=1.5)


def test_a_version_written_whole_reads_as_one_part_and_appends_follow_it(home: Platform) -> None:
    first = pa.Table.from_pylist([{"_key": str(r["id"]), **r} for r in _records(0, 5)])
    whole = write_dataset(home, home.admin(), "legacy", first, source="file")
    assert [p.digest for p in version_parts(home, whole)] == [whole.digest]
    assert _write(home, "legacy", _records(1, 5)) == 2
    table = read_dataset(home, "legacy")
    assert table.column("id").to_pylist() == [r["id"] for b in (0, 1) for r in _records(b, 5)]


def test_the_digest_covers_the_parts_list(home: Platform) -> None:
    for batch in range(3):
        _write(home, "tamper", _records(batch, 4))
    first = version_parts(home, get_dataset(home, "tamper:1"))[0]
    # Someone with the database's credentials swaps the last part for the first one's.
    with home.engine.connect().execution_options(**{GOVERNED: True}) as conn:
        conn.execute(
            update(DatasetPartRow)
            .where(DatasetPartRow.name == "tamper", DatasetPartRow.version == 3)
            .values(digest=first.digest, size=first.size)
        )
        conn.commit()
    with pytest.raises(IntegrityError, match="do not add up"):
        read_dataset(home, "tamper:3")
    assert read_dataset(home, "tamper:2").num_rows == 8  # the others still read


def test_a_contract_judges_each_batch_and_uniqueness_the_whole_dataset(home: Platform) -> None:
    contract = {
        "columns": {"amount": {"type": "double"}},
        "checks": [
            {"kind": "range", "column": "amount", "min": 0, "max": 100},
            {"kind": "unique", "columns": ["id"]},
        ],
    }
    assert _write(home, "checked", _records(0, 10), contract=contract) == 1
    assert _write(home, "checked", _records(1, 10), contract=contract) == 2
    assert get_dataset(home, "checked").validation is not None
    bad = [{**r, "amount": 500.0} for r in _records(2, 3)]
    with pytest.raises(ContractViolationError, match="range"):
        _write(home, "checked", bad, contract=contract)
    # New keys, but an id the first batch already has: only the whole dataset shows it.
    again = [{**r, "id": 3} for r in _records(3, 1)]
    keys = ["fresh-key"]
    with pytest.raises(ContractViolationError, match="unique"):
        write_micro_batch(home, home.admin(), "checked", again, keys, source="t", contract=contract)
    assert get_dataset(home, "checked").version == 2  # nothing stored, no key recorded
    assert _write(home, "checked", _records(4, 10), contract=contract) == 3


def test_records_that_do_not_fit_the_dataset_are_refused_by_field(home: Platform) -> None:
    _write(home, "shape", _records(0, 2))
    with pytest.raises(InvalidInputError, match="no field 'amount'"):
        write_micro_batch(home, home.admin(), "shape", [{"id": 9}], ["9"], source="t")


@settings(
    max_examples=15,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(-(2**40), 2**40), st.one_of(st.none(), st.floats(-1e12, 1e12))),
            min_size=1,
            max_size=12,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_batches_reads_back_as_their_concatenation(
    home: Platform, batches: list[list[tuple[int, float | None]]]
) -> None:
    name = f"prop{next(_NAMES)}"
    seen: list[dict[str, object]] = []
    counter = 0
    for batch in batches:
        records: list[dict[str, object]] = []
        for value, amount in batch:
            records.append({"id": counter, "v": value, "amount": amount})
            counter += 1
        if not seen:  # the first batch fixes the column types: amount is a float
            records[0]["amount"] = records[0]["amount"] or 0.0
        keys = [f"{name}-{r['id']}" for r in records]
        write_micro_batch(home, home.admin(), name, records, keys, source="t")
        seen.extend({"_key": k, **r} for k, r in zip(keys, records, strict=True))
    reference = pa.Table.from_pylist(seen).cast(get_dataset(home, name).schema)
    assert read_dataset(home, name).equals(reference)
    files = [str(p) for p in dataset_parquet_paths(home, name)]
    ducked = duckdb.connect().sql(f"SELECT * FROM read_parquet({files})").to_arrow_table()
    assert ducked.column("v").to_pylist() == reference.column("v").to_pylist()
    assert Path(files[0]).exists()
