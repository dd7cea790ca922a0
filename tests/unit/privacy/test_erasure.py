"""Right to erasure and retention on one small home, in process.

The home: a pii customers dataset, transactions (two versions), a derived dataset with the
key and one without, a feature view over transactions materialized (sealed: it is pii),
a training set from it, a model trained on that, and a prediction log (recent files whose
request ids are transaction ids, and one file 100 days old). Customer 3 is erased; what a
user relies on: nothing that held their rows decrypts any more (tried with every key the
store still holds), the certificate lists what was destroyed, rewritten and derived, the
audit trail and every remaining artifact verify, other customers read as before; retention
removes the expired prediction log file only.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ghaf.access.audit import verify_trail
from ghaf.data import list_versions, read_dataset, write_dataset
from ghaf.data.store import list_datasets
from ghaf.errors import GhafError, PermissionDeniedError
from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import materialize
from ghaf.features.online import get_online_features
from ghaf.features.registry import apply_definitions
from ghaf.features.retrieval import get_historical_features, save_training_set
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.privacy import (
    erase_subject,
    list_retention_runs,
    plan_retention,
    run_retention,
    verify_certificate,
)
from ghaf.privacy.shred import erased_digests
from ghaf.security.chunked import decrypt_stream
from ghaf.security.encrypted_store import EncryptedArtifactStore, body_context
from ghaf.security.identity import Actor, Credential
from ghaf.serving.predlog import (
    ParquetSink,
    PredictionBatch,
    prediction_log_keys,
    read_prediction_log,
)
from ghaf.settings import load_settings

SUBJECT = 3
CUSTOMERS = range(1, 9)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")


@dataclass
class World:
    platform: Platform
    admin: Actor
    before: dict[str, bytes]
    """Every file of the artifact store before the erasure (relative path -> bytes)."""
    certificate: dict[str, Any]
    other_rows: dict[str, int]
    """Rows of customer 4 in each dataset's latest version before the erasure."""


def _transactions(per_customer: int) -> pa.Table:
    ids = np.repeat(np.array(list(CUSTOMERS), np.int64), per_customer)
    seq = np.tile(np.arange(per_customer), len(CUSTOMERS))
    return pa.table(
        {
            "tx_id": [f"tx-{c}-{i}" for c, i in zip(ids, seq, strict=True)],
            "customer_id": ids,
            "event_ts": pa.array([T0 + timedelta(hours=int(i)) for i in seq], TS),
            "amount": (ids * 10.0 + seq).astype(np.float64),
        }
    )


def _log(sink: ParquetSink, tx_ids: list[str], ts_ms: float) -> None:
    records = [
        {
            "request_id": tx,
            "ts": ts_ms,
            "model": "fraud",
            "version": "1",
            "latency_ms": 1.0,
            "features": [[1.0, 2.0]],
            "outputs": {"score": [[0.5]]},
        }
        for tx in tx_ids
    ]
    sink.write(PredictionBatch.from_records(records))


def _snapshot(platform: Platform) -> dict[str, bytes]:
    root = Path(platform.settings.home) / "artifacts"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _build(platform: Platform, admin: Actor) -> None:
    pii = {"customer_id": "pii"}
    people = pa.table(
        {
            "customer_id": pa.array(list(CUSTOMERS), pa.int64()),
            "name": [f"person {c}" for c in CUSTOMERS],
        }
    )
    write_dataset(
        platform, admin, "customers", people, source="crm", column_tags={**pii, "name": "pii"}
    )
    tags = {**pii, "amount": "sensitive"}
    write_dataset(platform, admin, "transactions", _transactions(2), source="t", column_tags=tags)
    tx = _transactions(3)
    write_dataset(platform, admin, "transactions", tx, source="t", column_tags=tags)
    totals = tx.group_by("customer_id").aggregate([("amount", "sum")])
    write_dataset(
        platform, admin, "totals", totals, source="agg", inputs=["transactions:2"], column_tags=pii
    )
    daily = pa.table({"day": ["2026-01-01"], "amount": [float(pc.sum(tx["amount"]).as_py())]})
    write_dataset(platform, admin, "daily", daily, source="agg", inputs=["transactions:2"])
    customer = Entity("customer", ("customer_id",))
    view = FeatureView(
        name="tx_stats",
        entities=(customer,),
        source="dataset:transactions",
        features=(Field("amount"),),
        ttl=timedelta(days=30),
    )
    apply_definitions(platform, admin, [customer, view])
    materialize(platform, admin, until=T0 + timedelta(days=1))
    frame = pa.table(
        {
            "customer_id": pa.array(list(CUSTOMERS), pa.int64()),
            "event_ts": pa.array([T0 + timedelta(hours=5)] * len(CUSTOMERS), TS),
        }
    )
    data = get_historical_features(platform, frame, ["tx_stats:amount"])
    save_training_set(platform, admin, "train", data, ["tx_stats:amount"])
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model
    from ghaf.registry import register_model

    x = np.arange(16, dtype=float).reshape(8, 2)
    directory = Path(platform.settings.home) / "model-src"
    save_model(LogisticRegression().fit(x, np.arange(8) % 2), directory)
    register_model(platform, admin, "fraud", directory, lineage=["dataset:train:1"])
    sink = ParquetSink(  # encrypted, as ghaf serve writes it
        Path(platform.settings.home) / "predictions", keys=prediction_log_keys(platform)
    )
    now_ms = time.time() * 1000.0
    _log(sink, [f"tx-{c}-0" for c in CUSTOMERS], now_ms)
    _log(sink, [f"tx-{SUBJECT}-1"], now_ms)  # a file that holds only the subject
    _log(sink, [f"tx-{c}-2" for c in CUSTOMERS], now_ms - 100 * 86_400_000.0)  # expired


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("erasure")
    settings = load_settings(home=root / "home", artifact_region="ae-auh-1")
    with init_home(settings) as platform:
        admin = platform.admin()
        _build(platform, admin)
        other = {
            name: pc.sum(pc.equal(read_dataset(platform, name)["customer_id"], 4)).as_py()
            for name in ("customers", "transactions", "totals", "train")
        }
        before = _snapshot(platform)
        certificate = erase_subject(platform, admin, "customer_id", str(SUBJECT))
        yield World(platform, admin, before, certificate, other)


def _nodes(entries: list[dict[str, Any]], key: str = "node") -> set[str]:
    return {str(e[key]) for e in entries}


def test_the_certificate_lists_what_was_destroyed_rewritten_and_derived(world: World) -> None:
    body = world.certificate["certificate"]
    assert _nodes(body["destroyed"]) == {
        "dataset:customers:1",
        "dataset:transactions:1",
        "dataset:transactions:2",
        "dataset:totals:1",
        "dataset:train:1",
    }
    assert {e["method"] for e in body["destroyed"]} == {"crypto-shredded"}
    assert {(e["from"], e["to"], e["rows_removed"]) for e in body["rewritten"]} == {
        ("dataset:customers:1", "dataset:customers:2", 1),
        ("dataset:transactions:2", "dataset:transactions:3", 3),
        ("dataset:totals:1", "dataset:totals:2", 1),
        ("dataset:train:1", "dataset:train:2", 1),
    }
    assert body["online_views"] == [{"view": "feature_view:tx_stats:1", "rows_removed": 1}]
    logs = {(e["rows_removed"], e["action"]) for e in body["prediction_logs"]}
    assert logs == {(1, "rewritten"), (1, "deleted")}
    review = _nodes(body["review"])
    assert {"model:fraud:1", "dataset:daily:1"} <= review
    assert set(body["subject"]) == {"key_column", "salt", "value_sha256"}  # no value kept


def test_no_stored_byte_of_the_subject_s_rows_decrypts_with_any_key_left(world: World) -> None:
    platform = world.platform
    store = platform.artifacts
    assert isinstance(store, EncryptedArtifactStore)
    destroyed = {e["digest"] for e in world.certificate["certificate"]["destroyed"]}
    # Every body the destroyed artifacts had before, tried with every data key the store
    # still holds (each live header unwrapped by the live KEK).
    old_bodies = {
        path: data
        for path, data in world.before.items()
        if path.startswith("enc/") and path.split("/")[2] in destroyed
    }
    assert len(old_bodies) == len(destroyed)
    keys = []
    for digest in store.digests():
        for header in store.headers(digest):
            keys.append(store.keys.unwrap(header.wrapped, header.aad))
    assert keys
    for path, data in old_bodies.items():
        assert not (Path(platform.settings.home) / "artifacts" / path).exists()
        body_id = path.rsplit("/", 1)[1]
        for key in keys:
            with pytest.raises(GhafError):
                _decrypt(key, body_id, data)
    # The headers saved before the erasure unwrap (with the KEK), so their keys do open
    # the old bodies: the shredding is of every copy the home holds, as the notes say.
    saved = [p for p in world.before if p.startswith("hdr/") and p.split("/")[2] in destroyed]
    assert saved and "backups" in world.certificate["certificate"]["notes"][0]
    for digest in destroyed:
        with pytest.raises(GhafError):
            store.read_bytes(digest)
    assert set(erased_digests(platform)) == destroyed


def _decrypt(key: bytes, body_id: str, data: bytes) -> None:
    view = memoryview(data)
    offset = [0]

    def readinto(buffer: memoryview) -> int:
        count = min(len(buffer), len(view) - offset[0])
        buffer[:count] = view[offset[0] : offset[0] + count]
        offset[0] += count
        return count

    decrypt_stream(key, body_context(body_id), readinto, lambda _: None)


def test_everything_else_still_verifies_and_other_customers_read(world: World) -> None:
    platform = world.platform
    assert verify_trail(platform).ok
    report = verify_certificate(platform, world.certificate, value=str(SUBJECT))
    assert report["ok"], report
    for digest in platform.artifacts.digests():
        platform.artifacts.read_bytes(digest)  # verifies the digest as it reads
    erased = set(erased_digests(platform))
    for name in list_datasets(platform):
        for version in list_versions(platform, name):
            if version.digest in erased:
                continue
            table = read_dataset(platform, version.ref)
            if "customer_id" in table.column_names:
                assert SUBJECT not in table["customer_id"].to_pylist(), version.ref
    for name, rows in world.other_rows.items():
        assert pc.sum(pc.equal(read_dataset(platform, name)["customer_id"], 4)).as_py() == rows
    online = get_online_features(platform, {"customer_id": [SUBJECT, 4]}, ["tx_stats:amount"])
    ages = next(iter(online.ages.values()))
    assert ages[0] is None and ages[1] is not None  # the subject is unknown, 4 is there
    logged = read_prediction_log(
        Path(platform.settings.home) / "predictions", keys=prediction_log_keys(platform)
    )
    ids = logged["request_id"].to_pylist()
    assert not [i for i in ids if i.startswith(f"tx-{SUBJECT}-")]
    assert "tx-4-0" in ids and "tx-4-2" in ids


def test_a_tampered_certificate_fails_and_a_viewer_may_not_erase(world: World) -> None:
    forged = copy.deepcopy(world.certificate)
    forged["certificate"]["destroyed"].pop()
    report = verify_certificate(world.platform, forged)
    assert not report["ok"] and report["checks"][0]["check"] == "signature"
    viewer = Actor(
        "vic",
        roles=frozenset({"@credential", "*:viewer"}),
        credential=Credential("token", "vic"),
    )
    with pytest.raises(PermissionDeniedError):
        erase_subject(world.platform, viewer, "customer_id", "4")


def test_retention_removes_the_expired_prediction_log_only(world: World) -> None:
    platform = world.platform
    plan = plan_retention(platform)
    assert [(e.kind, e.limit_days) for e in plan.expired] == [("prediction_log", 90)]
    expired = Path(platform.settings.home) / plan.expired[0].name
    run_retention(platform, world.admin, dry_run=True)
    assert expired.exists()
    datasets_before = {n: len(list_versions(platform, n)) for n in list_datasets(platform)}
    run_retention(platform, world.admin)
    assert not expired.exists()
    logged = read_prediction_log(
        Path(platform.settings.home) / "predictions", keys=prediction_log_keys(platform)
    )
    assert "tx-4-0" in logged["request_id"].to_pylist()
    assert plan_retention(platform).expired == []
    assert {n: len(list_versions(platform, n)) for n in list_datasets(platform)} == datasets_before
    runs = list_retention_runs(platform)
    assert [r["dry_run"] for r in runs[:2]] == [False, True]
    assert runs[0]["removed"][0]["kind"] == "prediction_log"
    # A year on, pii versions are past 365 days, but each dataset's latest stays and
    # the versions it superseded were erased already: nothing is left to expire.
    later = plan_retention(platform, now=datetime.now(UTC) + timedelta(days=400))
    assert [e.name for e in later.expired if e.kind == "dataset_version"] == []


def test_the_doors_the_cli_and_the_control_plane_s_routes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI on the home lists and verifies the certificate; over the control plane's
    routes (the SDK's transport, with tokens) a privacy officer runs retention dry and
    reads the same certificates, a viewer may not erase, and nobody names a subject in a
    URL (the value travels in the body)."""
    import json

    import ghaf
    from ghaf.testing.people import mint
    from tests.unit.server.cli_runner import ghaf as ghaf_cli

    platform, home = world.platform, str(world.platform.settings.home)
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")  # the home's region, as its settings
    cert_id = str(world.certificate["certificate"]["id"])
    listed = ghaf_cli("--home", home, "erase", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert cert_id in listed.stdout
    verified = ghaf_cli("--home", home, "erase", "verify", cert_id, "-o", "json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], verified.stdout

    officer = mint(platform, "pia", ["privacy_officer"], project="*")  # home-wide
    viewer = mint(platform, "vic-viewer", ["viewer"])
    with ghaf.connect(home=home, token=officer) as pia:
        dry = pia.post("/retention/run", {"dry_run": True})
        assert dry["dry_run"] is True and "expired" in dry
        certificates = pia.get("/erasure/certificates")["certificates"]
        assert cert_id in {str(c["id"]) for c in certificates}
        assert pia.get(f"/erasure/certificates/{cert_id}/verify")["ok"]
    with ghaf.connect(home=home, token=viewer) as vic, pytest.raises(PermissionDeniedError):
        vic.post("/erasure/subject", {"key_column": "customer_id", "value": "4"})
    runs = list_retention_runs(platform)
    assert runs[0]["dry_run"] and runs[0]["actor"] == "pia"
