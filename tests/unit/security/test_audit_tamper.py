"""The tamper suite: `ghaf audit verify` refuses every single-record edit, delete, reorder,
truncation and consistent rewrite, at any position including the newest record, once the
records are covered by a checkpoint, and names the record or the exact range."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ghaf.access.audit import verify_trail
from ghaf.cli.exit_codes import exit_code_for
from ghaf.cli.main import app
from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.settings import load_settings
from tests.unit.security.audit_tampering import (
    KINDS,
    NEWEST,
    POSITIONS,
    build_home,
    copy_home,
    tamper,
)

REGIMES = {
    # A checkpoint after every commit: every tampering is named to the exact record.
    "each": "[security]\naudit_checkpoint_seconds = 0\n",
    # One every 4 records (1, 5, 9, 13: at init, by count, at close): a consistent
    # rewrite is named within the checkpoints around it.
    "coarse": "[security]\naudit_checkpoint_every = 4\naudit_checkpoint_seconds = 3600\n",
}
SIZES = {"each": tuple(range(1, NEWEST + 1)), "coarse": (1, 5, 9, 13)}
RECHAINED = {"rewrite", "reorder", "whole"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    homes = {}
    for name, toml in REGIMES.items():
        homes[name] = tmp_path_factory.mktemp(name) / "home"
        build_home(homes[name], toml)
    return homes


def _verify(home: Path) -> tuple[dict[str, object], BaseException | None]:
    out = CliRunner().invoke(app, ["--home", str(home), "audit", "verify", "--output", "json"])
    return json.loads(out.stdout.splitlines()[0]), out.exception


def _named(finding: dict[str, object]) -> tuple[int, int]:
    if finding["seq"] is not None:
        seq = int(str(finding["seq"]))
        return seq, seq
    first, last = finding["range"]  # type: ignore[misc]
    return int(first), int(last)


def _bracket(sizes: tuple[int, ...], seq: int) -> tuple[int, int]:
    """The records between the checkpoint before ``seq`` and the first covering it."""
    before = max((size for size in sizes if size < seq), default=0)
    return before + 1, min(size for size in sizes if size >= seq)


@pytest.mark.parametrize("regime", REGIMES)
def test_untouched_homes_verify(regime: str, pristine: dict[str, Path]) -> None:
    report, error = _verify(pristine[regime])
    assert error is None
    assert report == {
        "status": "valid",
        "records": NEWEST,
        "checkpoints": len(SIZES[regime]),
        "copies": len(SIZES[regime]),
        "findings": [],
    }


@pytest.mark.parametrize("where", POSITIONS)
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "whole"])
@pytest.mark.parametrize("regime", REGIMES)
def test_tampering_is_refused_naming_the_record(
    regime: str, kind: str, where: str, pristine: dict[str, Path], tmp_path: Path
) -> None:
    home = copy_home(pristine[regime], tmp_path / "tampered")
    first, last = tamper(home, kind, POSITIONS[where])
    report, error = _verify(home)
    assert isinstance(error, IntegrityError)
    assert exit_code_for(error) == 8
    assert report["status"] == "broken"
    finding = report["findings"][0]  # type: ignore[index]
    named = _named(finding)
    if regime == "each" or kind not in RECHAINED:
        assert named == (first, last)
    else:  # as close as the checkpoints resolve, and containing the record
        low, high = _bracket(SIZES[regime], first)
        assert low <= named[0] <= first <= named[1] <= high
    said = f"record {named[0]}" if named[0] == named[1] else f"records {named[0]}..{named[1]}"
    assert said in error.headline and said in finding["message"]  # type: ignore[index]
    assert "None" not in error.headline


@pytest.mark.parametrize("regime", REGIMES)
def test_a_whole_chain_rewrite_is_refused_at_its_first_record(
    regime: str, pristine: dict[str, Path], tmp_path: Path
) -> None:
    home = copy_home(pristine[regime], tmp_path / "rewritten")
    tamper(home, "whole", 1)
    _, error = _verify(home)
    assert isinstance(error, IntegrityError) and exit_code_for(error) == 8
    assert error.headline.startswith("audit trail is broken at record 1: checkpoint log line 1")
    assert "the chain was rewritten" in error.headline


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    regime=st.sampled_from(sorted(REGIMES)),
    kind=st.sampled_from(KINDS),
    seq=st.integers(1, NEWEST),
)
def test_any_tampering_anywhere_is_named(
    regime: str, kind: str, seq: int, pristine: dict[str, Path]
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        home = copy_home(pristine[regime], Path(scratch) / "home")
        first, last = tamper(home, kind, seq)
        with Platform(load_settings(home=home)) as platform:
            report = verify_trail(platform)
    assert report.status == "broken"
    failure = report.failures[0]
    named = (failure.seq, failure.seq) if failure.seq is not None else failure.span
    assert named is not None
    if regime == "each" or kind not in RECHAINED:
        assert named == (first, last)
    else:
        low, high = _bracket(SIZES[regime], first)
        assert low <= named[0] <= first <= named[1] <= high
    assert "None" not in report.headline
