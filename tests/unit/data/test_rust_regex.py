"""Regex checks on polars (Rust's regex) give RE2's verdicts, or stay in DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ghaf.data import rust_regex
from ghaf.data.checks import run_contract
from ghaf.data.contracts import Contract, Regex
from ghaf.data.rust_regex import count_mismatches, portable

ALPHABET = ["a", "b", "Z", "0", "9", "-", ".", "@", " ", "\n", "é", "_", "[", "\\"]
LITERALS = ["a", "b", "Z", "0", "9", "@", "-", "_", " ", "é", r"\.", r"\-", r"\*", r"\(", r"\["]
CLASS_ITEMS = ["a", "b", "Z", "0", "a-c", "0-9", "A-Z", "@", ".", " ", "_", r"\-", r"\]", r"\\"]
QUANTIFIERS = ["", "", "*", "+", "?", "{2}", "{1,}", "{0,2}", "*?", "+?"]

classes = st.builds(
    lambda negated, items: "[" + ("^" if negated else "") + "".join(items) + "]",
    st.booleans(),
    st.lists(st.sampled_from(CLASS_ITEMS), min_size=1, max_size=3),
)
atoms = st.one_of(st.sampled_from(LITERALS), st.just("."), classes)
pieces = st.builds(str.__add__, atoms, st.sampled_from(QUANTIFIERS))
bodies = st.recursive(
    st.lists(pieces, min_size=1, max_size=4).map("".join),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a}|{b}", inner, inner),
        st.builds(
            lambda body, q, opening: f"{opening}{body}){q}",
            inner,
            st.sampled_from(QUANTIFIERS),
            st.sampled_from(["(", "(?:"]),
        ),
        st.builds(str.__add__, inner, inner),
    ),
    max_leaves=6,
)
patterns = st.builds(
    lambda body, start, end: ("^" if start else "") + body + ("$" if end else ""),
    bodies,
    st.booleans(),
    st.booleans(),
)


def _re2_failures(path: Path, pattern: str) -> int:
    sql = f"SELECT count_if(NOT regexp_matches(s, ?)) FROM read_parquet('{path}')"
    return int(duckdb.execute(sql, [pattern]).fetchall()[0][0] or 0)


@settings(max_examples=80, deadline=None)
@given(
    pattern=patterns,
    values=st.lists(
        st.one_of(st.none(), st.text(alphabet=ALPHABET, max_size=8)), min_size=1, max_size=30
    ),
)
def test_polars_gives_re2_verdicts_on_the_portable_subset(
    tmp_path_factory: pytest.TempPathFactory, pattern: str, values: list[str | None]
) -> None:
    assert portable(pattern), pattern
    path = tmp_path_factory.mktemp("rx") / "s.parquet"
    pq.write_table(pa.table({"s": pa.array(values, pa.string())}), path, use_dictionary=False)
    try:
        expected = _re2_failures(path, pattern)
    except duckdb.Error:
        assume(False)  # RE2 refuses it: a contract could not hold it either
    try:
        got = count_mismatches(path, [Regex(column="s", pattern=pattern)])
    except rust_regex.EngineError:
        assume(False)  # polars refusing sends the check to DuckDB (tested below)
    assert got == [expected], pattern


RISKY = [r"\d", r"\w", r"\s", r"\b", r"\<", "[[:alpha:]]", "[a&&b]", "a{,2}", "(?i)", "[]a]"]


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.one_of(patterns, st.sampled_from(RISKY)), min_size=1, max_size=3),
    values=st.lists(st.text(alphabet=[*ALPHABET, "A", "٣", "\t"], max_size=6), max_size=20),
)
def test_whatever_portable_admits_gets_the_same_verdicts(
    tmp_path_factory: pytest.TempPathFactory, pieces: list[str], values: list[str]
) -> None:
    pattern = "".join(pieces)
    # assume, not return: hypothesis fails (Unsatisfiable) if no example is ever compared
    assume(portable(pattern))
    path = tmp_path_factory.mktemp("rx") / "s.parquet"
    pq.write_table(pa.table({"s": pa.array(values, pa.string())}), path, use_dictionary=False)
    try:
        expected = _re2_failures(path, pattern)
        got = count_mismatches(path, [Regex(column="s", pattern=pattern)])
    except (duckdb.Error, rust_regex.EngineError):
        assume(False)
    assert got == [expected], pattern


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d+",  # ASCII in RE2, Unicode in Rust
        r"\w",
        r"\s",
        r"a\b",
        r"\pL",
        r"\Qa.b\E",
        r"\<word",  # a word edge in Rust
        "[[:alpha:]]",
        "[a&&b]",  # an intersection in Rust, literals in RE2
        "[a--b]",
        "[]a]",
        "[a-]",
        "(?i)abc",  # inline flags
        "(?P<x>a)",
        "a{,3}",  # {0,3} in Rust, a literal in RE2
        "a}",
        "[abc",
        "tab\there",
    ],
)
def test_patterns_outside_the_common_subset_stay_in_duckdb(pattern: str) -> None:
    assert not portable(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"^[a-z0-9]+@bank\.ae$", r"^[A-Z]{3}-[0-9]{4}$", r"(?:ab|cd)+x?$", r"^[^@ ]+@[^@]+\.ae$"],
)
def test_common_patterns_are_portable(pattern: str) -> None:
    assert portable(pattern)


def _emails(path: Path) -> Path:
    values = ["a1@bank.ae", "B2@bank.ae", None, "c3@bank.ae", "d4@bank.aex", "@bank.ae"]
    pq.write_table(pa.table({"email": values}), path, use_dictionary=False)
    return path


def test_a_regex_check_runs_on_polars_beside_the_scan(tmp_path: Path) -> None:
    path = _emails(tmp_path / "e.parquet")
    check = Regex(column="email", pattern=r"^[a-z0-9]+@bank\.ae$")
    result = run_contract(Contract(checks=(check,)), path).results[0]
    assert result.failed == 3 == _re2_failures_of(path, check.pattern)
    assert [s["email"] for s in result.samples] == ["B2@bank.ae", "d4@bank.aex", "@bank.ae"]


def _re2_failures_of(path: Path, pattern: str) -> int:
    sql = f"SELECT count_if(NOT regexp_matches(email, ?)) FROM read_parquet('{path}')"
    return int(duckdb.execute(sql, [pattern]).fetchall()[0][0] or 0)


def test_a_pattern_polars_refuses_runs_in_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake refusal: no pattern that RE2 accepts and polars refuses is known, so the
    # engine's error is raised by hand to drive the DuckDB path.
    def refuse(path: Path, checks: list[Regex]) -> list[int]:
        raise pl.exceptions.ComputeError("regex too big")

    monkeypatch.setattr(rust_regex, "count_mismatches", refuse)
    path = _emails(tmp_path / "e.parquet")
    check = Regex(column="email", pattern=r"^[a-z0-9]+@bank\.ae$")
    assert run_contract(Contract(checks=(check,)), path).results[0].failed == 3
    nulls = tmp_path / "n.parquet"  # DuckDB's count_if over only NULLs is NULL, not 0
    pq.write_table(
        pa.table({"email": pa.array([None, None], pa.string())}), nulls, use_dictionary=False
    )
    assert run_contract(Contract(checks=(check,)), nulls).results[0].failed == 0
