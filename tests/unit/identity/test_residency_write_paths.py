"""Residency is enforced where data is written: datasets, materialized features, models.

The home's artifact store is in eu-west-1; data tagged ``pii`` must stay in ``ae-*``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select

from ghaf.data import write_dataset
from ghaf.errors import NotFoundError, PolicyViolationError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import load_settings

PII = pa.table({"customer_id": [1, 2, 3], "email": ["a@x.ae", "b@x.ae", "c@x.ae"]})


def _open(home: Path, region: str, **extra: str) -> Platform:
    return init_home(load_settings(home=home, artifact_region=region, **extra))


@pytest.fixture
def eu_platform(isolated_env: Path) -> Iterator[Platform]:
    with _open(isolated_env, "eu-west-1") as platform:
        yield platform


def _last_audit(platform: Platform) -> AuditRecordRow:
    with platform.read_session() as session:
        return session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()


def test_pii_dataset_is_refused_outside_ae_and_audited(eu_platform: Platform) -> None:
    with pytest.raises(PolicyViolationError, match=r"pii.*eu-west-1"):
        write_dataset(
            eu_platform,
            eu_platform.admin(),
            "customers",
            PII,
            source="t",
            column_tags={"email": "pii"},
        )
    last = _last_audit(eu_platform)
    assert (last.action, last.outcome) == ("dataset.write", "denied")
    assert "residency" in last.details
    from ghaf.data import get_dataset

    with pytest.raises(NotFoundError):
        get_dataset(eu_platform, "customers")
    assert list(eu_platform.artifacts.digests()) == []  # nothing stored


def test_pii_dataset_is_accepted_in_ae(isolated_env: Path) -> None:
    with _open(isolated_env, "ae-auh-1") as platform:
        version = write_dataset(
            platform, platform.admin(), "customers", PII, source="t", column_tags={"email": "pii"}
        )
        assert version.version == 1


def test_dataset_derived_from_pii_inherits_the_rule(isolated_env: Path, tmp_path: Path) -> None:
    with _open(isolated_env, "ae-auh-1") as platform:
        write_dataset(
            platform, platform.admin(), "customers", PII, source="t", column_tags={"email": "pii"}
        )
    # The same home, now pointed at an EU artifact store: a derived dataset is refused.
    with _open(isolated_env, "eu-west-1", artifact_url=(tmp_path / "eu").as_uri()) as platform:
        derived = pa.table({"customer_id": [1, 2, 3], "score": [0.1, 0.2, 0.3]})
        with pytest.raises(PolicyViolationError, match="dataset:scores is tagged pii"):
            write_dataset(
                platform, platform.admin(), "scores", derived, source="t", inputs=["customers:1"]
            )


def test_model_trained_on_pii_is_refused_outside_ae(isolated_env: Path, tmp_path: Path) -> None:
    from ghaf.models.flavors import save_model
    from ghaf.registry import register_model

    with _open(isolated_env, "ae-auh-1") as platform:
        write_dataset(
            platform, platform.admin(), "customers", PII, source="t", column_tags={"email": "pii"}
        )
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    model_dir = tmp_path / "model"
    save_model(model, model_dir)
    with _open(isolated_env, "eu-west-1", artifact_url=(tmp_path / "eu").as_uri()) as platform:
        with pytest.raises(PolicyViolationError, match="model:fraud"):
            register_model(
                platform, platform.admin(), "fraud", model_dir, lineage=["dataset:customers:1"]
            )
        last = _last_audit(platform)
        assert (last.action, last.outcome) == ("model.register", "denied")
    with _open(isolated_env, "ae-auh-1") as platform:
        version = register_model(
            platform, platform.admin(), "fraud", model_dir, lineage=["dataset:customers:1"]
        )
        assert version.version == 1


def test_pii_features_are_not_materialized_to_an_eu_online_store(
    isolated_env: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    from ghaf.features.materialize import materialize
    from ghaf.features.registry import apply_definitions
    from ghaf.testing.online_store import make_source, sample_definitions

    source = make_source(tmp_path / "stats.parquet")
    with _open(isolated_env, "ae-auh-1") as platform:
        write_dataset(
            platform,
            platform.admin(),
            "stats",
            pq.read_table(source),
            source="t",
            column_tags={"segment": "pii"},
        )
        defs = sample_definitions(source)
        view = defs[1]
        object.__setattr__(view, "source", "dataset:stats:1")
        apply_definitions(platform, platform.admin(), defs)  # type: ignore[arg-type]
    eu_online = _open(isolated_env, "ae-auh-1", online_store_region="eu-west-1")
    with eu_online, pytest.raises(PolicyViolationError, match="feature_view:customer_stats"):
        materialize(eu_online, eu_online.admin())
    with _open(isolated_env, "ae-auh-1") as platform:
        results = materialize(platform, platform.admin())
        assert results and results[0].rows > 0
