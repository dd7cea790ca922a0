"""Residency asks the store where it is (issue 17, finding 4): S3 through moto's server on
127.0.0.1, the online store on the Redis service.

pii landed in buckets really in eu-west-1 and us-east-1 while settings called them
``ae-auh-1``. The S3 store now asks ``GetBucketLocation`` at open and refuses a bucket
whose real region contradicts ``artifact_region``, so no door writes a byte there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.artifacts.s3 import S3BlobStore
from ghaf.errors import ConfigError
from ghaf.features.base import ViewLayout
from ghaf.features.online_redis import RedisOnlineStore
from ghaf.home import init_home
from ghaf.settings import load_settings

CREDENTIALS = {"key": "testing", "secret": "testing"}
CUSTOMERS = pa.table(
    {"customer_id": [1, 2, 3], "email": ["a@x.ae", "b@x.ae", "c@x.ae"], "x0": [0.1, 0.9, 0.4]}
)
CONTRACT = "columns:\n  email: {type: string, tag: pii}\n"


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the emulator; the environment carries its credentials."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _bucket(s3: Any, region: str) -> str:
    name = f"ghaf-{uuid.uuid4().hex[:10]}"
    if region == "us-east-1":  # S3's default location: created without a constraint
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def _objects(s3: Any, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def _ghaf(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **env},
        timeout=180,
    )


def _s3_env(bucket: str, endpoint: str, region: str = "ae-auh-1") -> dict[str, str]:
    return {
        "GHAF_ARTIFACT_URL": f"s3://{bucket}/ghaf",
        "GHAF_ARTIFACT_REGION": region,
        "GHAF_S3_ENDPOINT_URL": endpoint,
    }


@pytest.mark.parametrize("real", ["eu-west-1", "us-east-1"])
def test_a_bucket_elsewhere_is_refused_at_open(s3: Any, s3_endpoint: str, real: str) -> None:
    bucket = _bucket(s3, real)
    with pytest.raises(ConfigError) as caught:
        S3BlobStore(
            f"s3://{bucket}/ghaf",
            region="ae-auh-1",
            endpoint_url=s3_endpoint,
            storage_options=CREDENTIALS,
        )
    assert caught.value.headline == (
        f"artifact store s3://{bucket}/ghaf is in region {real} (the bucket's location), "
        "but artifact_region says ae-auh-1"
    )
    assert f"artifact_region = '{real}'" in (caught.value.hint or "")
    assert _objects(s3, bucket) == []


def test_a_bucket_it_creates_is_created_where_settings_say(s3: Any, s3_endpoint: str) -> None:
    bucket = f"ghaf-{uuid.uuid4().hex[:10]}"
    store = S3BlobStore(
        f"s3://{bucket}/ghaf",
        region="ae-auh-1",
        endpoint_url=s3_endpoint,
        storage_options=CREDENTIALS,
    )
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "ae-auh-1"
    writer = store.begin_write()
    writer.write(b"hello")
    writer.commit("k")
    with store.open_read("k") as handle:
        assert handle.read() == b"hello"


def test_a_home_on_a_bucket_whose_label_lies_stores_nothing_and_doctor_says_why(
    s3: Any, s3_endpoint: str, isolated_env: Path
) -> None:
    bucket = _bucket(s3, "eu-west-1")
    env = _s3_env(bucket, s3_endpoint)
    init = _ghaf("init", env=env)  # not even the audit checkpoint copies go there
    assert "is in region eu-west-1" in init.stderr and "says ae-auh-1" in init.stderr
    doctor = _ghaf("doctor", env=env)
    assert doctor.returncode != 0
    assert "is in region eu-west-1" in doctor.stdout + doctor.stderr
    assert _objects(s3, bucket) == []


@pytest.fixture
def honest_home(isolated_env: Path, tmp_path: Path) -> Iterator[Path]:
    """A home whose artifacts were in a local ae-auh-1 directory, with a model to score."""
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model
    from ghaf.security.signing import sign_model_dir

    settings = load_settings(home=isolated_env, artifact_region="ae-auh-1")
    with init_home(settings):
        pass
    model = tmp_path / "model"
    save_model(
        LogisticRegression().fit(CUSTOMERS.select(["x0"]).to_pandas().to_numpy(), [0, 1, 0]), model
    )
    sign_model_dir(settings, model)
    pq.write_table(CUSTOMERS, tmp_path / "customers.parquet")
    (tmp_path / "contract.yaml").write_text(CONTRACT)
    yield tmp_path


@pytest.mark.parametrize("real", ["eu-west-1", "us-east-1"])
@pytest.mark.parametrize("door", ["ingest", "register", "predict"])
def test_no_door_writes_pii_into_a_mislabelled_bucket(
    s3: Any, s3_endpoint: str, honest_home: Path, door: str, real: str
) -> None:
    bucket = _bucket(s3, real)
    env = _s3_env(bucket, s3_endpoint)
    data, model = honest_home / "customers.parquet", honest_home / "model"
    args = {
        "ingest": (
            "data",
            "ingest",
            str(data),
            "--name",
            "customers",
            "--contract",
            str(honest_home / "contract.yaml"),
        ),
        "register": ("models", "register", "fraud", str(model)),
        "predict": (
            "predict",
            str(model),
            str(data),
            "dataset:scores",
            "--flavor",
            "skops",
            "--classification",
            "pii",
        ),
    }[door]
    done = _ghaf(*args, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"is in region {real}" in done.stderr and "says ae-auh-1" in done.stderr
    assert _objects(s3, bucket) == []


def test_an_honest_bucket_takes_pii_and_a_file_needs_a_region(
    s3: Any, s3_endpoint: str, honest_home: Path
) -> None:
    bucket = _bucket(s3, "ae-auh-1")
    env = _s3_env(bucket, s3_endpoint)
    assert _ghaf("init", env=env).returncode == 0
    data, model = honest_home / "customers.parquet", honest_home / "model"
    contract = str(honest_home / "contract.yaml")
    ingested = _ghaf(
        "data", "ingest", str(data), "--name", "customers", "--contract", contract, env=env
    )
    assert ingested.returncode == 0, ingested.stderr
    assert [k for k in _objects(s3, bucket) if not k.startswith("ghaf/audit/")]  # the data
    from ghaf.registry import register_model

    settings = load_settings(
        artifact_url=f"s3://{bucket}/ghaf", artifact_region="ae-auh-1", s3_endpoint_url=s3_endpoint
    )
    with init_home(settings) as platform:
        signature = {"inputs": {"fields": [{"name": "x0", "type": "double"}]}}
        register_model(platform, platform.admin(), "fraud", model, signature=signature)
    out = honest_home / "scores.parquet"
    source = "dataset:customers:1"
    unknown = _ghaf("predict", "fraud:1", source, str(out), env=env)
    assert unknown.returncode == 3, unknown.stderr
    assert "has no known region" in unknown.stderr and "--region" in unknown.stderr
    assert not out.exists()
    scored = _ghaf("predict", "fraud:1", source, str(out), "--region", "ae-auh-1", env=env)
    assert scored.returncode == 0, scored.stderr
    assert pq.read_table(out).column("email").to_pylist() == CUSTOMERS.column("email").to_pylist()


def test_the_redis_online_store_remembers_its_region(redis_url: str) -> None:
    prefix = f"ghaftest{uuid.uuid4().hex[:8]}"
    layout = ViewLayout("v", ("customer_id",), ("int64",), (("score", "float64"),))
    rows = pa.table({"customer_id": [1], "__ev": [1], "score": [0.5]})
    from datetime import UTC, datetime

    store = RedisOnlineStore(redis_url, prefix=prefix, region="eu-west-1")
    try:
        unwritten = RedisOnlineStore(redis_url, prefix=prefix, region="ae-auh-1")
        unwritten.close()  # nothing written yet: nothing recorded, no refusal
        store.write_view(layout, rows, watermark=datetime.now(UTC), replace=True)
        with pytest.raises(ConfigError, match=r"recorded as in region eu-west-1.*says ae-auh-1"):
            RedisOnlineStore(redis_url, prefix=prefix, region="ae-auh-1")
        same = RedisOnlineStore(redis_url, prefix=prefix, region="eu-west-1")
        assert same.read_many(layout, [1], ["score"])[0] == (1, 0.5)
        same.close()
    finally:
        store.drop_all()
        store.close()
