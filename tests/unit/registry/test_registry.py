"""Registry: versions, aliases, four-eyes promotion, cards, tampering, concurrency (gates:
test_gate_policies)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from ghaf.errors import (
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
)
from ghaf.platform import Platform
from ghaf.registry import (
    approve_model_version,
    download_model,
    get_model_version,
    list_models,
    list_versions,
    load_example,
    load_model,
    register_model,
    set_alias,
    transition_model_version,
    update_model_card,
)
from ghaf.registry.card import render_html
from ghaf.security.audit_tables import AuditRecordRow
from tests.unit.registry.conftest import People, X


def test_register_get_download_and_load(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    v1 = register_model(platform, platform.admin(), "fraud", model_dir, example=X[:3])
    v2 = register_model(platform, platform.admin(), "fraud", model_dir)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.stage == "candidate"
    assert get_model_version(platform, "fraud").version == 2
    assert get_model_version(platform, "fraud:latest").version == 2
    assert get_model_version(platform, "fraud:1").signature["inputs"]["fields"][0]["name"] == "f0"
    example = load_example(platform, v1)
    assert example is not None and example.num_rows == 3
    assert load_example(platform, v2) is None
    out = download_model(platform, "fraud:1", tmp_path / "dl")
    assert sorted(p.name for p in out.iterdir() if p.name != "model.sig") == [
        "ghaf-model.json",
        "ghaf-release.json",  # what the signature is for: fraud:1, its project, its digests
        "model.skops",
    ]
    model = load_model(platform, "fraud:1")
    assert model.predict_proba(X).shape == (60, 2)
    assert list_models(platform) == [("fraud", 2, platform.default_project)]
    assert [v.version for v in list_versions(platform, "fraud")] == [1, 2]


def test_register_a_single_model_file(platform: Platform, model_dir: Path) -> None:
    version = register_model(platform, platform.admin(), "file-model", model_dir / "model.skops")
    assert version.flavor == "skops"
    assert load_model(platform, "file-model").predict(X).shape == (60,)


@pytest.mark.parametrize("ref", ["fraud:0", "fraud:x", "bad name", "fraud@1bad", "fraud@"])
def test_bad_references_are_refused(platform: Platform, ref: str) -> None:
    with pytest.raises(InvalidInputError):
        get_model_version(platform, ref)


def test_missing_things_are_not_found(platform: Platform, model_dir: Path) -> None:
    with pytest.raises(NotFoundError):
        get_model_version(platform, "nope")
    register_model(platform, platform.admin(), "fraud", model_dir)
    with pytest.raises(NotFoundError, match="no alias"):
        get_model_version(platform, "fraud@champion")
    with pytest.raises(NotFoundError):
        get_model_version(platform, "fraud:9")


def test_an_alias_points_at_exactly_one_version(platform: Platform, model_dir: Path) -> None:
    for _ in range(2):
        register_model(platform, platform.admin(), "fraud", model_dir)
    set_alias(platform, platform.admin(), "fraud", "challenger", 1)
    assert get_model_version(platform, "fraud@challenger").version == 1
    set_alias(platform, platform.admin(), "fraud", "challenger", 2)
    assert get_model_version(platform, "fraud@challenger").version == 2
    assert get_model_version(platform, "fraud:1").aliases == ()
    assert get_model_version(platform, "fraud:2").aliases == ("challenger",)
    with pytest.raises(InvalidInputError):
        set_alias(platform, platform.admin(), "fraud", "latest", 1)


def _audit(platform: Platform, action: str) -> list[str]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.outcome).where(AuditRecordRow.action == action)
        ).scalars()
        return list(rows)


def test_promotion_needs_a_second_persons_approval(
    platform: Platform, people: People, model_dir: Path
) -> None:
    owner = platform.admin()
    register_model(platform, people.ana, "fraud", model_dir)
    transition_model_version(platform, people.rita, "fraud:1", "staging")
    with pytest.raises(PolicyViolationError, match=r"approved \(0 of 1 approvals"):
        transition_model_version(platform, people.rita, "fraud:1", "production")
    assert _audit(platform, "model.promote") == ["allowed", "denied"]
    with pytest.raises(PolicyViolationError, match="ana is the author of fraud:1"):
        approve_model_version(platform, people.ana, "fraud:1")
    with pytest.raises(PermissionDeniedError, match=r"may not model\.approve"):
        approve_model_version(platform, people.rita, "fraud:1")  # no approver role
    assert get_model_version(platform, "fraud:1").stage == "staging"
    approved = approve_model_version(platform, people.ben, "fraud:1", comment="ok")
    assert approved.approvals == ("ben",)
    assert approved.approval_records[0].credential.startswith("token ")  # type: ignore[union-attr]
    promoted = transition_model_version(platform, people.rita, "fraud:1", "production")
    assert promoted.stage == "production"
    # The owner is no exception: their own version needs a second person too.
    register_model(platform, owner, "fraud", model_dir)
    transition_model_version(platform, owner, "fraud:2", "staging")
    with pytest.raises(PolicyViolationError, match=r"is the author of fraud:2"):
        approve_model_version(platform, owner, "fraud:2")
    # ben's token was minted by the owner, the author: that is no second person.
    with pytest.raises(PolicyViolationError, match="the author minted it"):
        approve_model_version(platform, people.ben, "fraud:2")
    assert _audit(platform, "model.approve")[-2:] == ["denied", "denied"]
    # A newer production version archives the old one.
    register_model(platform, people.ana, "fraud", model_dir)
    transition_model_version(platform, people.rita, "fraud:3", "staging")
    approve_model_version(platform, people.ben, "fraud:3")
    transition_model_version(platform, people.rita, "fraud:3", "production")
    assert get_model_version(platform, "fraud:1").stage == "archived"


def test_lifecycle_refuses_skipping_stages(platform: Platform, model_dir: Path) -> None:
    register_model(platform, platform.admin(), "fraud", model_dir)
    with pytest.raises(InvalidInputError, match="cannot move from candidate to production"):
        transition_model_version(platform, platform.admin(), "fraud:1", "production")
    with pytest.raises(InvalidInputError, match="unknown"):
        transition_model_version(platform, platform.admin(), "fraud:1", "shipped")


def test_card_is_generated_editable_and_rendered(platform: Platform, model_dir: Path) -> None:
    version = register_model(
        platform,
        platform.admin(),
        "fraud",
        model_dir,
        metrics={"auc": 0.91, "demographic_parity_difference": 0.03},
        lineage=["dataset:transactions:1"],
        description="Flags card transactions for review.",
    )
    for section in ("## Intended use", "## Data", "## Metrics", "## Fairness", "## Limitations"):
        assert section in version.card
    assert "dataset:transactions:1" in version.card
    assert "demographic_parity_difference" in version.card.split("## Fairness")[1]
    edited = update_model_card(
        platform, platform.admin(), "fraud:1", "# Card\n\n<script>x</script>"
    )
    assert edited.card.startswith("# Card")
    page = render_html(edited.card)
    assert "<h1>Card</h1>" in page and "<script>" not in page


def test_a_tampered_model_file_is_refused_at_load(platform: Platform, model_dir: Path) -> None:
    version = register_model(platform, platform.admin(), "fraud", model_dir)
    assert version.signed
    digest = version.files["model.skops"]["digest"]
    blobs = [p for p in platform.settings.home.rglob("*") if p.is_file() and digest in p.parts]
    assert blobs, "the blob should be stored under its digest"
    for blob in blobs:
        if blob.suffix == ".json":
            continue
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.chmod(0o600)
        blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        load_model(platform, "fraud:1")


_REGISTER_MANY = """
import sys
from pathlib import Path
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.settings import load_settings
platform = Platform(load_settings())
for _ in range(int(sys.argv[2])):
    v = register_model(platform, platform.admin(), "fraud", Path(sys.argv[1]))
    print(v.version, flush=True)
"""


def register_concurrently(model_dir: Path, env: dict[str, str], count: int = 4) -> list[int]:
    """Two processes register ``count`` versions each at once; returns all version numbers."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REGISTER_MANY, str(model_dir), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        for _ in range(2)
    ]
    versions: list[int] = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        versions += [int(line) for line in out.split()]
    return versions


@pytest.mark.slow
def test_concurrent_registrations_get_distinct_versions_sqlite(
    platform: Platform, model_dir: Path
) -> None:
    versions = register_concurrently(model_dir, {"GHAF_HOME": str(platform.settings.home)})
    assert sorted(versions) == list(range(1, 9))
    assert np.array_equal([v.version for v in list_versions(platform, "fraud")], np.arange(1, 9))
