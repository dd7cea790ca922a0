"""A SQL transform reads its inputs and nothing else: no file, URL or extension, and it
writes no file (DuckDB's external access is off and cannot be turned back on)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from ghaf.data import list_versions, read_dataset, run_transform, write_dataset
from ghaf.data.store import dataset_parquet_path
from ghaf.errors import InvalidInputError
from ghaf.platform import Platform


@pytest.fixture
def inputs(platform: Platform) -> Platform:
    write_dataset(platform, platform.admin(), "tx", pa.table({"k": [1, 2, 3]}), source="t")
    write_dataset(
        platform, platform.admin(), "dim", pa.table({"k": [1, 2], "w": [10, 20]}), source="t"
    )
    write_dataset(platform, platform.admin(), "secret", pa.table({"s": ["x"]}), source="t")
    return platform


def _sql(platform: Platform, sql: str) -> None:
    run_transform(platform, platform.admin(), "out", {"tx": "tx", "dim": "dim"}, sql=sql)


def test_a_sql_transform_reads_its_inputs(inputs: Platform) -> None:
    made = run_transform(
        inputs,
        inputs.admin(),
        "out",
        {"tx": "tx", "select": "dim"},  # a keyword as an alias is quoted
        sql='SELECT tx.k, w * $f AS w FROM tx JOIN "select" USING (k) ORDER BY k',
        params={"f": 2},
    )
    assert read_dataset(inputs, made.ref).to_pydict() == {"k": [1, 2], "w": [20, 40]}


def test_a_sql_transform_cannot_reach_files_or_extensions(
    inputs: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    other = dataset_parquet_path(inputs, "secret")  # a verified file of another dataset
    written = cwd / "out.csv"
    refused = [
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT content FROM read_blob('/etc/hostname')",
        f"SELECT * FROM read_parquet('{other}')",
        f"SELECT * FROM '{other}'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        f"COPY (SELECT * FROM tx) TO '{written}'",
        f"ATTACH '{cwd / ':memory:'}' AS leak",
        "SET enable_external_access = true",
        "RESET enable_external_access",
        f"SET allowed_paths = ['{other}']",
        "INSTALL httpfs",
        "LOAD httpfs",
    ]
    for sql in refused:
        with pytest.raises(InvalidInputError, match="transform SQL failed") as caught:
            _sql(inputs, sql)
        assert "disabled" in str(caught.value) or "locked" in str(caught.value), sql
    assert list(cwd.iterdir()) == []
    assert list_versions(inputs, "out") == []
