"""Contracts: every check kind, one scan, severities, quarantine, bad contracts, reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.data import ContractViolationError, get_dataset, ingest, list_versions, validate
from ghaf.data.checks import run_contract
from ghaf.data.contracts import (
    Allowed,
    ColumnSpec,
    Contract,
    Distribution,
    Freshness,
    NotNull,
    Range,
    References,
    Regex,
    RowCount,
    Unique,
    load_contract,
)
from ghaf.errors import InvalidInputError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings


@pytest.fixture
def platform(isolated_env: Path) -> Iterator[Platform]:
    """A home whose stores are in ae-auh-1: these tests write data tagged for the UAE."""
    with init_home(load_settings(home=isolated_env, artifact_region="ae-auh-1")) as opened:
        yield opened


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _data(path: Path) -> Path:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3, 4, 4, 6], pa.int64()),
            "amount": [10.0, -5.0, 30.0, None, 50.0, 60.0],
            "channel": ["pos", "online", "atm", "pos", "pos", None],
            "email": ["a@b.ae", "bad", "c@d.ae", "e@f.ae", "g@h.ae", "i@j.ae"],
            "customer": pa.array([1, 2, 9, 1, 2, 2], pa.int64()),
            "ts": pa.array(
                [NOW - timedelta(days=d) for d in (5, 4, 3, 2, 1, 1)], pa.timestamp("s", tz="UTC")
            ),
        }
    )
    pq.write_table(table, path)
    return path


def test_every_check_kind_against_duckdb_reference(platform: Platform, tmp_path: Path) -> None:
    customers = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"customer_id": pa.array([1, 2, 3], pa.int64())}), customers)
    ingest(platform, platform.admin(), customers, "customers")
    path = _data(tmp_path / "d.parquet")
    contract = Contract(
        columns=(ColumnSpec("id", "int64", nullable=False), ColumnSpec("amount", "double")),
        checks=(
            Range(column="amount", min=0, max=55),
            Allowed(column="channel", values=("pos", "online")),
            Regex(column="email", pattern=r"^[^@]+@[^@]+\.ae$"),
            Unique(columns=("id",)),
            Unique(columns=("customer", "channel"), severity="warn"),
            NotNull(column="channel", severity="warn"),
            References(column="customer", dataset="customers", key="customer_id"),
            Freshness(column="ts", max_age=timedelta(days=2), now=NOW),
            Freshness(column="ts", max_age=timedelta(hours=1), now=NOW, name="too_fresh"),
            RowCount(min=1, max=5),
            Distribution(column="amount", stat="mean", min=0, max=100),
            Distribution(column="amount", stat="median", min=100),
        ),
    )
    report = run_contract(contract, path, resolve=lambda ref: Path(str(customers)))
    failed = {r.name: r.failed for r in report.results}
    con = duckdb.connect()
    scan = f"read_parquet('{path}')"
    assert failed["not_null(id)"] == 0
    reference = con.execute(f"SELECT count(*) FROM {scan} WHERE amount < 0 OR amount > 55")
    assert failed["range(amount)"] == reference.fetchall()[0][0] == 2
    assert failed["allowed(channel)"] == 1
    assert failed["regex(email)"] == 1
    assert failed["unique(id)"] == 1
    assert failed["unique(customer, channel)"] == 1  # (1, pos) twice
    assert failed["not_null(channel)"] == 1
    assert failed["references(customer)"] == 1
    assert failed["freshness(ts)"] == 0 and failed["too_fresh"] == 1
    assert failed["row_count()"] == 1
    assert failed["distribution(amount)"] == 1  # mean passes, median >= 100 fails
    assert [r.failed for r in report.results if r.kind == "distribution"] == [0, 1]
    sample = next(r for r in report.results if r.name == "allowed(channel)").samples[0]
    assert sample["channel"] == "atm" and sample["file_row_number"] == 2
    assert not report.ok and len(report.errors) >= 5
    assert {r.name for r in report.warnings} >= {"not_null(channel)"}


def test_distribution_relative_to_a_reference_version(platform: Platform, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = tmp_path / "base.parquet"
    pq.write_table(pa.table({"x": rng.normal(100, 5, 5000)}), base)
    ingest(platform, platform.admin(), base, "ref")
    shifted = tmp_path / "shifted.parquet"
    pq.write_table(pa.table({"x": rng.normal(130, 5, 5000)}), shifted)
    contract = Contract(
        checks=(Distribution(column="x", stat="mean", reference="ref:1", tolerance=0.1),)
    )
    assert validate(platform, str(base), contract).ok
    report = validate(platform, str(shifted), contract)
    assert not report.ok and "mean = 130" in report.results[0].detail


def test_error_stores_nothing_warn_stores_and_records(platform: Platform, tmp_path: Path) -> None:
    path = _data(tmp_path / "d.parquet")
    strict = {"columns": {"amount": {"min": 0}}}
    with pytest.raises(ContractViolationError, match=r"range\(amount\)") as caught:
        ingest(platform, platform.admin(), path, "d", contract=strict)
    assert caught.value.report.errors[0].failed == 1
    assert list_versions(platform, "d") == []
    assert list(platform.artifacts.digests()) == []
    lenient = {
        "columns": {"amount": {"min": 0, "severity": "warn", "tag": "sensitive"}},
        "residency": "ae-auh-1",
    }
    dv = ingest(platform, platform.admin(), path, "d", contract=lenient)
    assert dv.num_rows == 6 and dv.residency == "ae-auh-1"
    assert dv.column_tags == {"amount": "sensitive"}
    assert dv.validation is not None and dv.validation["checks"][0]["status"] == "warn"


def test_quarantine_splits_failing_rows_into_their_own_version(
    platform: Platform, tmp_path: Path
) -> None:
    path = _data(tmp_path / "d.parquet")
    contract = {"quarantine": True, "columns": {"amount": {"min": 0}, "email": {"regex": "@"}}}
    dv = ingest(platform, platform.admin(), path, "d", contract=contract)
    bad = get_dataset(platform, "d.quarantine")
    assert dv.num_rows == 5 and bad.num_rows == 1  # row 1 fails both checks
    assert dv.validation is not None and dv.validation["quarantine"] == "d.quarantine"
    assert {c["status"] for c in dv.validation["checks"]} == {"quarantined"}


def test_yaml_contract_and_report_formats(tmp_path: Path) -> None:
    path = _data(tmp_path / "d.parquet")
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "columns:\n"
        "  id: {type: int64, nullable: false, unique: true, tag: public}\n"
        "  email: {type: string, regex: '^[^@]+@', tag: pii, severity: warn}\n"
        "checks:\n"
        "  - {kind: row_count, min: 1}\n"
        "  - {kind: freshness, column: ts, max_age: 3650d}\n"
    )
    contract = load_contract(spec)
    assert contract.column_tags == {"id": "public", "email": "pii"}
    report = run_contract(contract, path)
    body = json.loads(report.to_json())
    assert [c["name"] for c in body["checks"]] == [
        "not_null(id)",
        "unique(id)",
        "regex(email)",
        "row_count()",
        "freshness(ts)",
    ]
    html = report.to_html()
    assert "<table" in html and "unique(id)" in html and "bad" in html
    assert report.to_table().row_count == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("checks:\n  - {kind: sparkle, column: a}\n", r"checks\[0\]: unknown check kind 'sparkle'"),
        ("columns:\n  a: {regex: '(unclosed'}\n", r"column 'a'.*regex '\(unclosed' is invalid"),
        ("checks:\n  - {kind: regex, column: a, pattern: '(?=x)'}\n", r"checks\[0\].*invalid"),
        ("columns:\n  a: {type: int65}\n", r"column 'a': unknown type 'int65'"),
        ("columns:\n  a: {colour: red}\n", r"column 'a': unknown key 'colour'"),
        ("checks:\n  - {kind: range, column: a}\n", r"range needs min or max"),
        ("checks:\n  - {kind: freshness, column: a, max_age: soon}\n", r"max_age 'soon'"),
        ("checks:\n  - {kind: unique, columns: [a], severity: fatal}\n", r"severity 'fatal'"),
        ("flavour: 1\n", r"unknown key 'flavour'"),
    ],
)
def test_bad_contracts_name_the_check(tmp_path: Path, body: str, message: str) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(body)
    with pytest.raises(InvalidInputError, match=message):
        load_contract(spec)


def test_schema_problems_name_the_column(tmp_path: Path) -> None:
    path = _data(tmp_path / "d.parquet")
    contract = Contract(
        columns=(ColumnSpec("missing", "int64"), ColumnSpec("amount", "int64")),
        checks=(Freshness(column="id", max_age=timedelta(days=1)),),
    )
    details = [r.detail for r in run_contract(contract, path).errors]
    assert "column 'missing' is missing" in details
    assert "column 'amount' has type double, contract says int64" in details
    assert any("freshness needs a timestamp" in d for d in details)


def test_unreadable_contract_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read contract"):
        load_contract(tmp_path / "nope.yaml")
