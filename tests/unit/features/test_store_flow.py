"""Apply → historical features → materialize → online read → consistency, on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import select

from ghaf.errors import InvalidInputError
from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import check_consistency, materialization_history, materialize
from ghaf.features.online import get_online_features
from ghaf.features.registry import apply_definitions, get_feature_view, plan_apply
from ghaf.features.retrieval import get_historical_features, get_training_set
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.online_store import T0, TS, make_source
from ghaf.testing.online_store import sample_definitions as definitions


def _audit(platform: Platform) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(session.execute(select(AuditRecordRow).order_by(AuditRecordRow.seq)).scalars())


def test_apply_versions_and_diff(platform: Platform, source: Path) -> None:
    defs = definitions(source)
    changes = apply_definitions(platform, platform.admin(), defs)  # type: ignore[arg-type]
    assert [c.action for c in changes] == ["create", "create", "create"]
    assert {c.action for c in plan_apply(platform, defs)} == {"unchanged"}  # type: ignore[arg-type]
    longer = definitions(source, ttl_days=5)
    plan = plan_apply(platform, longer)  # type: ignore[arg-type]
    update = next(c for c in plan if c.kind == "feature_view")
    assert update.action == "update" and not update.incompatible
    assert "ttl_seconds" in update.diff
    apply_definitions(platform, platform.admin(), longer)  # type: ignore[arg-type]
    _, version = get_feature_view(platform, "customer_stats")
    assert version == 2


def test_incompatible_change_needs_force_and_is_audited(platform: Platform, source: Path) -> None:
    apply_definitions(platform, platform.admin(), definitions(source))  # type: ignore[arg-type]
    customer = Entity("customer", ("customer_id",))
    changed = FeatureView(
        "customer_stats", (customer,), str(source), (Field("spend", "int64"),), owner="risk"
    )
    before = len(_audit(platform))
    with pytest.raises(InvalidInputError, match="spend"):
        apply_definitions(platform, platform.admin(), [customer, changed])
    records = _audit(platform)
    assert len(records) == before + 1 and records[-1].outcome == "failed"
    _, version = get_feature_view(platform, "customer_stats")
    assert version == 1
    apply_definitions(platform, platform.admin(), [customer, changed], force=True)
    last = _audit(platform)[-1]
    assert last.outcome == "allowed" and "forced" in last.details
    assert get_feature_view(platform, "customer_stats")[1] == 2


def test_historical_matches_duckdb_asof(platform: Platform, source: Path) -> None:
    apply_definitions(platform, platform.admin(), definitions(source))  # type: ignore[arg-type]
    frame = pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 999, 1], pa.int64()),
            "event_ts": pa.array([T0 + timedelta(days=d) for d in (1, 5, 9, 2, 30)], TS),
        }
    )
    got = get_historical_features(platform, frame, ["customer_stats:spend"]).read_all()
    con = duckdb.connect()
    con.register("e", frame)
    ref = con.sql(
        f"SELECT CASE WHEN f.event_ts >= e.event_ts - INTERVAL 3 DAY THEN f.spend END AS spend "
        f"FROM (SELECT *, row_number() OVER () AS r FROM e) e ASOF LEFT JOIN "
        f"read_parquet('{source}') f ON e.customer_id = f.customer_id "
        f"AND e.event_ts >= f.event_ts ORDER BY r"
    ).to_arrow_table()
    assert got.column("spend").to_pylist() == ref.column("spend").to_pylist()
    assert got.column("spend").null_count == 2  # the unknown entity and the stale row
    with pytest.raises(InvalidInputError, match="customer_stats:nope"):
        get_historical_features(platform, frame, ["customer_stats:nope"])
    training = get_training_set(platform, "fraud_v1", T0, T0 + timedelta(days=2)).read_all()
    assert training.num_rows > 0
    assert training.column_names == ["customer_id", "event_ts", "spend", "count"]


def test_materialize_read_online_and_consistency(platform: Platform, source: Path) -> None:
    apply_definitions(platform, platform.admin(), definitions(source, ttl_days=10_000))  # type: ignore[arg-type]
    until = T0 + timedelta(days=5)
    [first] = materialize(platform, platform.admin(), until=until)
    assert first.mode == "full" and first.rows == 50
    assert first.stats["spend"]["count"] == 50 and first.stats["segment"]["distinct"] >= 1
    assert check_consistency(platform, "customer_stats").ok
    result = get_online_features(
        platform, [{"customer_id": 3}, {"customer_id": 12345}], ["customer_stats:spend"]
    )
    assert result.columns["spend"][1] is None and result.columns["spend"][0] is not None
    assert result.ages["customer_stats"][1] is None
    [second] = materialize(platform, platform.admin(), until=T0 + timedelta(days=20))
    assert second.mode == "incremental" and second.start == until
    assert check_consistency(platform, "customer_stats").ok
    history = materialization_history(platform, "customer_stats")
    assert [h.mode for h in history] == ["incremental", "full"]
    with pytest.raises(InvalidInputError, match="already materialized"):
        materialize(platform, platform.admin(), until=T0 + timedelta(days=20))


def test_stale_online_values_come_back_null_with_age(platform: Platform, source: Path) -> None:
    apply_definitions(platform, platform.admin(), definitions(source, ttl_days=1))  # type: ignore[arg-type]
    materialize(platform, platform.admin(), until=T0 + timedelta(days=20))
    result = get_online_features(platform, {"customer_id": [1, 2]}, "fraud_v1")
    assert result.columns["spend"] == [None, None]
    ages = result.ages["customer_stats"]
    assert all(age is not None and age > 86_400 for age in ages)
    with pytest.raises(InvalidInputError, match="customer_id"):
        get_online_features(platform, [{"cust": 1}], "fraud_v1")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "stats.parquet")
