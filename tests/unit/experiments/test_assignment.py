"""Sticky experiment assignment: salt + unit decides, by weight, and the log records it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ghaf.errors import InvalidInputError
from ghaf.serving.predlog import LOG_SCHEMA, PredictionBatch, read_prediction_log
from ghaf.serving.traffic import HOLDOUT, Assignment

UNITS = [f"user-{i}" for i in range(20_000)]


def _counts(assignment: Assignment) -> dict[str, int]:
    counts: dict[str, int] = {}
    for unit in UNITS:
        variant, _ = assignment.assign(unit)
        counts[variant] = counts.get(variant, 0) + 1
    return counts


def test_shares_follow_the_weights_and_the_holdout() -> None:
    assignment = Assignment("exp", "salt-1", {"1": 70, "2": 30}, holdout=0.1)
    counts = _counts(assignment)
    # holdout: Binomial(n, 0.1); the rest split 70/30 among the units left
    held = counts[HOLDOUT]
    assert stats.binomtest(held, len(UNITS), 0.1).pvalue > 0.001
    observed = [counts["1"], counts["2"]]
    expected = np.array([0.7, 0.3]) * sum(observed)
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_holdout_units_are_served_the_control() -> None:
    assignment = Assignment("exp", "s", {"1": 1, "2": 1}, holdout=0.5, control="2")
    served = {assignment.assign(u) for u in UNITS[:500]}
    assert (HOLDOUT, "2") in served and (HOLDOUT, "1") not in served
    assert all(v == version for v, version in served if v != HOLDOUT)


@settings(max_examples=200, deadline=None)
@given(unit=st.text(min_size=1, max_size=40), salt=st.text(max_size=20))
def test_the_same_unit_always_gets_the_same_variant(unit: str, salt: str) -> None:
    one = Assignment("exp", salt, {"a": 1, "b": 2, "c": 3}, holdout=0.2)
    again = Assignment("exp", salt, {"a": 1, "b": 2, "c": 3}, holdout=0.2)
    assert one.assign(unit) == again.assign(unit) == one.assign(unit)


def test_assignment_is_the_same_in_another_process() -> None:
    """No per-process hash seed: a fresh interpreter (another worker, a restart) agrees."""
    code = (
        "from ghaf.serving.traffic import Assignment\n"
        "a = Assignment('exp', 'salt-9', {'1': 1, '2': 1}, holdout=0.1)\n"
        "print(','.join(a.assign(f'u{i}')[0] for i in range(300)))\n"
    )
    env_seed = {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_seed, check=True
    ).stdout.strip()
    here = Assignment("exp", "salt-9", {"1": 1, "2": 1}, holdout=0.1)
    assert out.split(",") == [here.assign(f"u{i}")[0] for i in range(300)]


def test_a_new_salt_reshuffles_units_independently() -> None:
    first = Assignment("exp", "salt-a", {"1": 1, "2": 1})
    second = Assignment("exp", "salt-b", {"1": 1, "2": 1})
    a = np.array([first.assign(u)[0] == "1" for u in UNITS])
    b = np.array([second.assign(u)[0] == "1" for u in UNITS])
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert stats.chi2_contingency(table).pvalue > 0.001  # no carry-over between salts


@pytest.mark.parametrize("holdout", [-0.1, 1.0, 2.0])
def test_a_holdout_outside_zero_to_one_is_refused(holdout: float) -> None:
    with pytest.raises(InvalidInputError, match="holdout"):
        Assignment("exp", "s", {"1": 1}, holdout=holdout)


def _record(i: int, **extra: object) -> dict[str, object]:
    return {
        "request_id": f"r{i}",
        "ts": float(i),
        "model": "fraud",
        "version": "1",
        "variant": "1",
        "latency_ms": 1.0,
        "features": np.ones((1, 2)),
        "outputs": {"p": np.array([0.5])},
        **extra,
    }


def test_the_log_records_unit_experiment_shadow_and_revision(tmp_path: Path) -> None:
    records = [
        _record(0, unit="u0", experiment="exp", revision=3),
        _record(1, shadow=True, revision=3),
        _record(2),
    ]
    pq.write_table(PredictionBatch.from_records(records).to_arrow(), tmp_path / "a.parquet")
    columns = ["request_id", "unit", "experiment", "shadow", "revision"]
    table = read_prediction_log(tmp_path, columns)
    assert table.to_pylist() == [
        {"request_id": "r0", "unit": "u0", "experiment": "exp", "shadow": False, "revision": 3},
        {"request_id": "r1", "unit": None, "experiment": None, "shadow": True, "revision": 3},
        {"request_id": "r2", "unit": None, "experiment": None, "shadow": False, "revision": None},
    ]
    bus = list(PredictionBatch.from_records(records).records())
    assert bus[0]["unit"] == "u0" and bus[1]["shadow"] is True


def test_logs_written_before_the_new_columns_still_read(tmp_path: Path) -> None:
    old_schema = pa.schema([LOG_SCHEMA.field(n) for n in LOG_SCHEMA.names[:8]])
    new = PredictionBatch.from_records([_record(5, unit="u5", experiment="exp")]).to_arrow()
    old = PredictionBatch.from_records([_record(4)]).to_arrow().select(old_schema.names)
    pq.write_table(old, tmp_path / "predictions-w0-00000001.parquet")
    pq.write_table(new, tmp_path / "predictions-w0-00000002.parquet")
    table = read_prediction_log(tmp_path)
    assert table.schema == LOG_SCHEMA
    assert table.column("unit").to_pylist() == [None, "u5"]
    assert table.column("shadow").to_pylist() == [False, False]
    assert table.column("request_id").to_pylist() == ["r4", "r5"]
