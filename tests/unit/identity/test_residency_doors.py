"""Residency checks the truth, before the first byte, at every door that writes data.

Issue 17, finding 4: a feature view declared pii (or reading a raw copy of pii data)
went to an EU online store; an online store's region was whatever settings said; a
refused registration had already stored its blobs; ``ghaf models register`` could not
declare lineage and a feature-view lineage node was skipped; ``ghaf predict`` wrote its
output (pii columns carried through) anywhere, unchecked and unaudited. Data tagged
``pii`` must stay in ``ae-*`` (the default policy).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ghaf.data import dataset_parquet_path, get_dataset, write_dataset
from ghaf.errors import ConfigError, InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.features.definitions import FeatureView
from ghaf.features.materialize import materialize
from ghaf.features.online import open_online_store
from ghaf.features.online_sqlite import SqliteOnlineStore
from ghaf.features.registry import apply_definitions
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import load_settings
from ghaf.testing.online_store import T0, TS, make_source, sample_definitions

CUSTOMERS = pa.table(
    {
        "customer_id": [1, 2, 3, 4],
        "email": ["a@x.ae", "b@x.ae", "c@x.ae", "d@x.ae"],
        "x0": [0.1, 0.9, 0.2, 0.8],
        "x1": [1.0, 0.0, 1.0, 0.0],
    }
)


def _open(home: Path, region: str, **extra: str) -> Platform:
    return init_home(load_settings(home=home, artifact_region=region, **extra))


def _eu(home: Path, tmp_path: Path) -> Platform:
    """The same home, its artifact store now an EU directory."""
    return _open(home, "eu-west-1", artifact_url=(tmp_path / "eu").as_uri())


def _blobs(root: Path) -> list[Path]:
    """Stored artifacts (content blobs and writes in progress; not audit checkpoint copies)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] != "audit")


def _last(platform: Platform, action: str | None = None) -> AuditRecordRow:
    query = select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
    if action is not None:
        query = query.where(AuditRecordRow.action == action)
    with platform.read_session() as session:
        return session.execute(query).scalar_one()


def _ghaf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        timeout=180,
    )


EU_ENV = {"GHAF_ARTIFACT_REGION": "eu-west-1"}


def _view(path: Path, **changes: object) -> list[object]:
    customer, view, service = sample_definitions(path)
    assert isinstance(view, FeatureView)
    return [customer, dataclasses.replace(view, **changes), service]  # type: ignore[arg-type]


def _write_customers(platform: Platform) -> None:
    write_dataset(
        platform,
        platform.admin(),
        "customers",
        CUSTOMERS,
        source="t",
        column_tags={"email": "pii"},
    )


# -- materialization: a view's own classification and its raw sources -----------------


@pytest.fixture
def eu_online(isolated_env: Path) -> Iterator[Platform]:
    """Artifacts in ae-auh-1, the online store declared in eu-west-1."""
    with _open(isolated_env, "ae-auh-1", online_store_region="eu-west-1") as platform:
        yield platform


def test_a_view_declared_pii_over_raw_parquet_is_not_materialized_to_eu(
    eu_online: Platform, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "stats.parquet")
    apply_definitions(eu_online, eu_online.admin(), _view(source, classification="pii"))  # type: ignore[arg-type]
    with pytest.raises(PolicyViolationError, match=r"feature_view:customer_stats:1 is tagged pii"):
        materialize(eu_online, eu_online.admin())
    last = _last(eu_online)
    assert (last.action, last.outcome) == ("features.materialize", "denied")
    assert "customer_stats:1 classification" in last.details
    store = open_online_store(eu_online.settings.resolved_online_store_url)
    assert store.watermark("customer_stats") is None  # not one row written


def test_a_raw_source_nothing_is_known_of_is_unclassified(
    eu_online: Platform, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "stats.parquet")
    apply_definitions(eu_online, eu_online.admin(), _view(source))  # type: ignore[arg-type]
    results = materialize(eu_online, eu_online.admin())
    assert results[0].rows == 50


def test_a_raw_copy_of_a_pii_dataset_is_pii(eu_online: Platform, tmp_path: Path) -> None:
    source = make_source(tmp_path / "stats.parquet")
    write_dataset(
        eu_online,
        eu_online.admin(),
        "stats",
        pq.read_table(source),
        source="t",
        column_tags={"segment": "pii"},
    )
    copy = tmp_path / "copied.parquet"  # the decrypted working copy, copied aside
    shutil.copy(dataset_parquet_path(eu_online, "stats:1"), copy)
    apply_definitions(eu_online, eu_online.admin(), _view(copy))  # type: ignore[arg-type]
    with pytest.raises(PolicyViolationError, match="is tagged pii") as caught:
        materialize(eu_online, eu_online.admin())
    assert "eu-west-1" in caught.value.headline
    assert "holds the bytes of dataset:stats:1" in _last(eu_online).details


def test_a_view_reads_the_dataset_version_of_now_not_of_apply(
    eu_online: Platform, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "stats.parquet")
    table = pq.read_table(source)
    write_dataset(eu_online, eu_online.admin(), "stats", table, source="t")
    apply_definitions(eu_online, eu_online.admin(), _view(source, source="dataset:stats"))  # type: ignore[arg-type]
    # A later version of the source is pii; the view (linked to version 1) reads it now.
    write_dataset(
        eu_online, eu_online.admin(), "stats", table, source="t", column_tags={"segment": "pii"}
    )
    with pytest.raises(PolicyViolationError, match="is tagged pii"):
        materialize(eu_online, eu_online.admin())


# -- online stores remember their region -------------------------------------------------


def test_the_sqlite_online_store_remembers_the_region_of_its_first_write(tmp_path: Path) -> None:
    from ghaf.features.base import ViewLayout

    layout = ViewLayout("v", ("customer_id",), ("int64",), (("score", "float64"),))
    rows = pa.table({"customer_id": [1], "__ev": [1], "score": [0.5]})
    url = f"sqlite:///{tmp_path / 'online.db'}"
    empty = SqliteOnlineStore(url, region="ae-auh-1")  # opened, nothing written: no record
    empty.close()
    store = SqliteOnlineStore(url, region="eu-west-1")
    store.write_view(layout, rows, watermark=T0, replace=True)
    store.close()
    with pytest.raises(ConfigError, match=r"recorded as in region eu-west-1.*says ae-auh-1"):
        SqliteOnlineStore(url, region="ae-auh-1")
    again = SqliteOnlineStore(url)
    assert again.region == "eu-west-1"  # what the store says, asked without a label
    again.close()


def test_relabelling_an_eu_online_store_does_not_let_pii_in(
    isolated_env: Path, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "stats.parquet")
    with _open(isolated_env, "ae-auh-1", online_store_region="eu-west-1") as platform:
        apply_definitions(platform, platform.admin(), _view(source))  # type: ignore[arg-type]
        materialize(platform, platform.admin())  # unclassified: fine in the EU
        apply_definitions(platform, platform.admin(), _view(source, classification="pii"))  # type: ignore[arg-type]
    # Settings now call the same store ae-auh-1: the store remembers eu-west-1.
    with _open(isolated_env, "ae-auh-1", online_store_region="ae-auh-1") as platform:
        with pytest.raises(ConfigError, match=r"eu-west-1.*ae-auh-1"):
            materialize(platform, platform.admin(), full=True)
        last = _last(platform)
        assert (last.action, last.outcome) == ("features.materialize", "failed")
        store = SqliteOnlineStore(platform.settings.resolved_online_store_url)
        assert store.region == "eu-west-1"
        history = [h.version for h in _history(platform)]
        assert history == [1]  # only the unclassified version was ever written


def _history(platform: Platform) -> list[Any]:
    from ghaf.features.materialize import materialization_history

    return list(materialization_history(platform, "customer_stats"))


# -- training sets keep their views' classification ---------------------------------------


def test_a_training_set_from_a_pii_view_is_pii(isolated_env: Path, tmp_path: Path) -> None:
    from ghaf.features.retrieval import get_historical_features, save_training_set
    from ghaf.registry import register_model

    source = make_source(tmp_path / "stats.parquet")
    frame = pa.table(
        {"customer_id": pa.array([1, 2], pa.int64()), "event_ts": pa.array([T0] * 2, TS)}
    )
    with _open(isolated_env, "ae-auh-1") as platform:
        apply_definitions(platform, platform.admin(), _view(source, classification="pii"))  # type: ignore[arg-type]
        data = get_historical_features(platform, frame, ["customer_stats:spend"])
        saved = save_training_set(
            platform, platform.admin(), "training", data, ["customer_stats:spend"]
        )
        assert saved.column_tags == {"spend": "pii"}
    with _eu(isolated_env, tmp_path) as platform:
        data = get_historical_features(platform, frame, ["customer_stats:spend"])
        with pytest.raises(PolicyViolationError, match="dataset:training is tagged pii"):
            save_training_set(
                platform, platform.admin(), "training", data, ["customer_stats:spend"]
            )
        model_dir = _model_dir(tmp_path)
        with pytest.raises(PolicyViolationError, match="model:fraud is tagged pii"):
            register_model(
                platform, platform.admin(), "fraud", model_dir, lineage=["dataset:training:1"]
            )
    assert _blobs(tmp_path / "eu") == []


# -- registration: checked before any blob, lineage on the command line --------------------


def _model_dir(tmp_path: Path, name: str = "model") -> Path:
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model

    directory = tmp_path / name
    if not directory.exists():
        x = CUSTOMERS.select(["x0", "x1"]).to_pandas().to_numpy()
        save_model(LogisticRegression().fit(x, [0, 1, 0, 1]), directory)
    return directory


def test_a_refused_registration_stores_no_blob(isolated_env: Path, tmp_path: Path) -> None:
    from ghaf.registry import register_model

    with _open(isolated_env, "ae-auh-1") as platform:
        _write_customers(platform)
    model_dir = _model_dir(tmp_path)
    with _eu(isolated_env, tmp_path) as platform:
        before = _blobs(tmp_path / "eu")
        with pytest.raises(PolicyViolationError, match="model:fraud is tagged pii"):
            register_model(
                platform,
                platform.admin(),
                "fraud",
                model_dir,
                lineage=["dataset:customers:1"],
                signature=SIGNATURE,
            )
        assert _blobs(tmp_path / "eu") == before == []
        last = _last(platform)
        assert (last.action, last.outcome) == ("model.register", "denied")


def test_models_register_takes_lineage_and_refuses_before_storing(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")  # for the ghaf processes
    with _open(isolated_env, "ae-auh-1") as platform:
        _write_customers(platform)
    model_dir = str(_model_dir(tmp_path))
    eu = {**EU_ENV, "GHAF_ARTIFACT_URL": (tmp_path / "eu").as_uri()}
    refused = _ghaf(
        "models", "register", "fraud", model_dir, "--lineage", "dataset:customers:1", env=eu
    )
    assert refused.returncode == 7, refused.stderr
    assert "model:fraud is tagged pii" in refused.stderr and "eu-west-1" in refused.stderr
    assert _blobs(tmp_path / "eu") == []
    with _open(isolated_env, "ae-auh-1") as platform:
        last = _last(platform)
        assert (last.action, last.outcome) == ("model.register", "denied")
    done = _ghaf("models", "register", "fraud", model_dir, "--lineage", "dataset:customers:1")
    assert done.returncode == 0, done.stderr
    with _open(isolated_env, "ae-auh-1") as platform:
        from ghaf.registry import get_model_version

        assert get_model_version(platform, "fraud:1").lineage == ["dataset:customers:1"]
    # Lineage Ghaf knows nothing of is tagged unknown; a policy may keep it in.
    strict = {**eu, "GHAF_SECURITY__RESIDENCY": '{"pii": ["ae-*"], "unknown": ["ae-*"]}'}
    missing = _ghaf(
        "models", "register", "fraud", model_dir, "--lineage", "dataset:nope:1", env=strict
    )
    assert missing.returncode == 7, missing.stderr
    assert "model:fraud is tagged unknown and may not be stored in eu-west-1" in missing.stderr
    assert _blobs(tmp_path / "eu") == []
    bad = _ghaf("models", "register", "fraud", model_dir, "--lineage", "features:customer_stats")
    assert bad.returncode == 3 and "not a node id" in bad.stderr


def test_a_feature_view_in_lineage_is_not_skipped(isolated_env: Path, tmp_path: Path) -> None:
    from ghaf.registry import register_model

    source = make_source(tmp_path / "stats.parquet")
    with _open(isolated_env, "ae-auh-1") as platform:
        apply_definitions(platform, platform.admin(), _view(source, classification="pii"))  # type: ignore[arg-type]
    with _eu(isolated_env, tmp_path) as platform:
        with pytest.raises(PolicyViolationError, match="model:fraud is tagged pii") as caught:
            register_model(
                platform,
                platform.admin(),
                "fraud",
                _model_dir(tmp_path),
                lineage=["feature_view:customer_stats:1"],
            )
        assert "eu-west-1" in caught.value.headline
    assert _blobs(tmp_path / "eu") == []
    node = "feature_view:customer_stats:1"
    explained = _ghaf("policy", "check", "--object", node, "--region", "eu-west-1")
    assert explained.returncode == 7
    assert f"tag pii (from {node} classification)" in explained.stdout


def test_no_lineage_node_is_read_as_untagged(platform: Platform) -> None:
    from ghaf.data.residency import NO_OWN_TAGS, object_tags
    from ghaf.features.residency import lineage_tags
    from ghaf.lineage.graph import NODE_KINDS

    # Every kind the graph knows is accounted for: datasets and feature views carry
    # tags of their own, the others inherit theirs from upstream (a new kind fails here).
    assert set(NODE_KINDS) == {"dataset", "feature_view", *NO_OWN_TAGS}
    ghost = object_tags(platform, "dataset:ghost:1")
    assert ghost == {"unknown": ["dataset:ghost:1 is not in this home: its tags are unknown"]}
    assert set(lineage_tags(platform, "feature_view:ghost:1")) == {"unknown"}
    with pytest.raises(InvalidInputError, match="not a node id"):
        object_tags(platform, "training_set:x")


# -- batch predict: outputs checked against the input's and the model's tags, audited -----


SIGNATURE = {
    "inputs": {"fields": [{"name": "x0", "type": "double"}, {"name": "x1", "type": "double"}]}
}
"""The model reads x0 and x1; other columns (customer_id, email) are carried through."""


def _register(platform: Platform, tmp_path: Path) -> None:
    from ghaf.registry import register_model

    register_model(platform, platform.admin(), "fraud", _model_dir(tmp_path), signature=SIGNATURE)


def test_predict_to_a_file_is_checked_against_its_declared_classification(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "eu-west-1")  # for the ghaf processes
    with _open(isolated_env, "eu-west-1") as platform:
        _register(platform, tmp_path)
    source = tmp_path / "in.parquet"
    pq.write_table(CUSTOMERS, source)
    out = tmp_path / "scores.parquet"
    plain = _ghaf("predict", "fraud:1", str(source), str(out))
    assert plain.returncode == 0, plain.stderr  # nothing says it is pii: eu is fine
    out.unlink()
    refused = _ghaf("predict", "fraud:1", str(source), str(out), "--classification", "pii")
    assert refused.returncode == 7, refused.stderr
    assert "is tagged pii and may not be stored in eu-west-1" in refused.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
    with _open(isolated_env, "eu-west-1") as platform:
        last = _last(platform)
        assert (last.action, last.outcome) == ("prediction.export", "denied")
        assert last.resource == f"file:{out.resolve()}"
    allowed = _ghaf(
        "predict",
        "fraud:1",
        str(source),
        str(out),
        "--classification",
        "pii",
        "--region",
        "ae-auh-1",
    )
    assert allowed.returncode == 0, allowed.stderr
    metadata = pq.read_schema(out).metadata
    assert json.loads(metadata[b"ghaf:tags"]) == {"pii": ["declared by --classification"]}
    with _open(isolated_env, "eu-west-1") as platform:
        last = _last(platform, "prediction.export")  # the job's usage.record follows it
        assert (last.action, last.outcome) == ("prediction.export", "allowed")
        details = json.loads(last.details)
        assert (details["region"], details["rows"], details["tags"]) == ("ae-auh-1", 4, ["pii"])
        # The exported file keeps its tags: a view over it is pii.
        from ghaf.data.residency import file_tags

        assert set(file_tags(platform, out)) == {"pii"}


def test_predict_carries_a_datasets_pii_columns_and_tags(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHAF_ARTIFACT_REGION", "ae-auh-1")  # for the ghaf processes
    with _open(isolated_env, "ae-auh-1") as platform:
        _write_customers(platform)
        _register(platform, tmp_path)
    done = _ghaf("predict", "fraud:1", "dataset:customers:1", "dataset:scores")
    assert done.returncode == 0, done.stderr
    with _open(isolated_env, "ae-auh-1") as platform:
        scores = get_dataset(platform, "scores")
        assert scores.column_tags == {"email": "pii"}  # carried through, still pii
        assert set(scores.inputs) == {"model:fraud:1", "dataset:customers:1"}
        read = _last(platform, "dataset.read_pii")
        assert (read.resource, read.outcome) == ("dataset:customers:1", "allowed")
    out = tmp_path / "scores.parquet"
    refused = _ghaf("predict", "fraud:1", "dataset:customers:1", str(out), "--region", "eu-west-1")
    assert refused.returncode == 7 and "is tagged pii" in refused.stderr
    assert not out.exists()


def test_predict_into_an_eu_dataset_is_refused_before_scoring(
    isolated_env: Path, tmp_path: Path
) -> None:
    with _open(isolated_env, "ae-auh-1") as platform:
        _write_customers(platform)
        copy = tmp_path / "customers.parquet"  # pii bytes, no label on the file
        shutil.copy(dataset_parquet_path(platform, "customers:1"), copy)
    with _eu(isolated_env, tmp_path) as platform:
        _register(platform, tmp_path)
        before = _blobs(tmp_path / "eu")
        staging = platform.settings.home / "tmp"
        with pytest.raises(PolicyViolationError, match="dataset:scores is tagged pii"):
            from ghaf.serving.models import resolve_model
            from ghaf.serving.outputs import score_to_target

            spec = resolve_model(platform, "fraud:1", tmp_path / "dl", serving=False)
            score_to_target(
                platform, platform.admin(), spec, copy, "dataset:scores", progress=False
            )
        assert _blobs(tmp_path / "eu") == before
        assert not staging.exists() or not any(staging.iterdir())
        last = _last(platform)
        assert (last.action, last.outcome) == ("dataset.write", "denied")
        with pytest.raises(NotFoundError):
            get_dataset(platform, "scores")


def test_a_file_input_classified_pii_makes_every_output_column_pii(
    isolated_env: Path, tmp_path: Path
) -> None:
    with _open(isolated_env, "ae-auh-1") as platform:
        _register(platform, tmp_path)
        source = tmp_path / "in.parquet"
        pq.write_table(CUSTOMERS, source)
        from ghaf.serving.models import resolve_model
        from ghaf.serving.outputs import score_to_target

        spec = resolve_model(platform, "fraud:1", tmp_path / "dl", serving=False)
        score_to_target(
            platform,
            platform.admin(),
            spec,
            source,
            "dataset:scores",
            classification=["pii"],
            progress=False,
        )
        tags = get_dataset(platform, "scores").column_tags
        assert set(tags.values()) == {"pii"}
        assert set(tags) == set(get_dataset(platform, "scores").schema.names)
