"""Residency: pii data, its features and models trained on it stay in ae-*; refusals audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select

from ghaf.access.residency import RESIDENCY_ACTION, check_residency
from ghaf.data import write_dataset
from ghaf.data.residency import check_object_residency
from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.home import init_home
from ghaf.lineage import link
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.residency import decide_residency
from ghaf.settings import load_settings


@pytest.fixture
def platform(isolated_env: Path) -> Iterator[Platform]:
    """A home whose stores are in ae-auh-1: these tests write data tagged for the UAE."""
    with init_home(load_settings(home=isolated_env, artifact_region="ae-auh-1")) as opened:
        yield opened


DEFAULT = {"pii": ["ae-*"], "resident:ae": ["ae-*"]}


@pytest.mark.parametrize(
    ("tags", "region", "allowed"),
    [
        (["pii"], "ae-auh-1", True),
        (["pii"], "ae-dxb-1", True),
        (["pii"], "eu-west-1", False),
        (["resident:ae"], "eu-west-1", False),
        (["resident:ae"], "ae-auh-1", True),
        (["public"], "eu-west-1", True),
        ([], "us-east-1", True),
        (["resident:eu"], "eu-west-1", True),  # resident:X without a rule means X-*
        (["resident:eu"], "ae-auh-1", False),
        (["pii", "resident:eu"], "ae-auh-1", False),  # every rule must hold
        (["pii"], "aex-1", False),  # no prefix tricks: ae-* needs the dash
    ],
)
def test_decisions(tags: list[str], region: str, allowed: bool) -> None:
    assert decide_residency(DEFAULT, tags, region).allowed is allowed


def test_bad_region_is_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match="region"):
        decide_residency(DEFAULT, ["pii"], "EU West")


def _denials(platform: Platform) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(
            session.execute(
                select(AuditRecordRow).where(AuditRecordRow.action == RESIDENCY_ACTION)
            ).scalars()
        )


def test_pii_dataset_features_and_model_refused_in_eu_allowed_in_ae(platform: Platform) -> None:
    admin = platform.admin()
    table = pa.table({"customer_id": [1, 2], "national_id": ["784-1", "784-2"], "x": [0.1, 0.2]})
    write_dataset(
        platform, admin, "customers", table, source="test", column_tags={"national_id": "pii"}
    )
    with platform.spine.operation(admin, "lineage.test_link", "lineage", "default"):
        link("dataset:customers:1", "feature_view:customer_features:1", "derived")
        link("feature_view:customer_features:1", "run:r1", "input")
        link("run:r1", "model:churn:1", "produced")
    for node in ("dataset:customers:1", "feature_view:customer_features:1", "model:churn:1"):
        before = len(_denials(platform))
        with pytest.raises(PolicyViolationError, match=r"tagged pii .* eu-west-1"):
            check_object_residency(platform, node, "eu-west-1")
        records = _denials(platform)
        assert len(records) == before + 1
        assert records[-1].outcome == "denied" and records[-1].resource == node
        assert check_object_residency(platform, node, "ae-auh-1").allowed
    explained = check_object_residency(platform, "model:churn:1", "ae-dxb-1").explain()
    assert "dataset:customers:1 column national_id, upstream of model:churn:1" in explained


def test_refusal_inside_a_governed_write_fails_it_and_is_audited(platform: Platform) -> None:
    admin = platform.admin()
    with (
        pytest.raises(PolicyViolationError),
        platform.spine.operation(admin, "dataset.copy", "dataset:c", "default"),
    ):
        check_residency(platform, ["pii"], "eu-west-1", resource="dataset:c")
    with platform.read_session() as session:
        last = session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()
    assert (last.action, last.outcome) == ("dataset.copy", "denied")
    assert "residency" in json.loads(last.details)["error"]


def test_policy_comes_from_settings(platform: Platform) -> None:
    strict = platform.settings.model_copy(
        update={
            "security": platform.settings.security.model_copy(
                update={"residency": {"pii": ["ae-auh-*"]}}
            )
        }
    )
    with Platform(strict) as other, pytest.raises(PolicyViolationError):
        check_residency(other, ["pii"], "ae-dxb-1")
