"""Profiles of pii and sensitive columns keep no values: counts, null rates and types only.

The profile lives in the metadata database and ``ghaf data show`` prints it; min/max and
top values of an e-mail column would be pii stored and shown in clear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.data.profile import profile_table, redact_profile

pytestmark = pytest.mark.slow

EMAILS = ["ana@bank.ae", "ben@bank.ae", "omar@bank.ae", "layla@bank.ae"]


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )


def test_ingest_keeps_no_value_of_a_pii_column(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "ghaf.toml").write_text('artifact_region = "ae-auh-1"\n')  # pii may live here
    assert ghaf(home, "init").returncode == 0
    data = tmp_path / "customers.csv"
    data.write_text(
        "id,email,salary\n" + "".join(f"{i},{e},{1000 * i}\n" for i, e in enumerate(EMAILS))
    )
    contract = tmp_path / "contract.yaml"
    contract.write_text(
        "columns:\n  id: {type: int64, tag: public}\n  email: {type: string, tag: pii}\n"
        "  salary: {type: int64, tag: sensitive}\n"
    )
    out = ghaf(home, "data", "ingest", str(data), "-n", "customers", "-c", str(contract))
    assert out.returncode == 0, out.stderr
    shown = ghaf(home, "data", "show", "customers")
    assert shown.returncode == 0, shown.stderr
    assert not any(e in shown.stdout for e in EMAILS)
    assert "(pii: no values kept)" in shown.stdout
    body = json.loads(ghaf(home, "data", "show", "customers", "--json").stdout)
    email, salary, ident = (body["profile"]["columns"][c] for c in ("email", "salary", "id"))
    assert set(email) == {"type", "count", "nulls", "null_fraction", "distinct", "redacted"}
    assert email["count"] == 4 and email["redacted"] == "pii"
    assert "max" not in salary and "mean" not in salary and salary["redacted"] == "sensitive"
    assert (ident["min"], ident["max"]) == (0, 3)  # a public column keeps its values
    with (home / "ghaf.db").open("rb") as db:  # nor anywhere else in the metadata database
        raw = db.read()
    assert not any(e.encode() in raw for e in EMAILS)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40))
def test_no_value_of_a_sensitive_column_survives_redaction(values: list[str]) -> None:
    import pyarrow as pa

    profile = profile_table(pa.table({"secret": values, "n": list(range(len(values)))}))
    redacted = redact_profile(profile, {"secret": "pii"})
    text = json.dumps(redacted["columns"]["secret"])
    assert not any(json.dumps(v)[1:-1] in text for v in values if len(v) > 3)
    assert redacted["columns"]["n"] == profile["columns"]["n"]
    assert redacted["columns"]["secret"]["count"] == len(values)
