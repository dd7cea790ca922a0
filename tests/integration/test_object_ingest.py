"""Files on object storage ingest (issue 22, item 5): s3:// through moto's server on 127.0.0.1.

What a user relies on: ``ghaf data ingest s3://BUCKET/KEY.csv|parquet`` reads the object
with the home's S3 settings and stores the same rows as the local file would; pii in a
bucket that really is outside the regions allowed for it is refused before a byte is read
(the bucket is asked, not a setting) and audited; a malformed object is named by its URL
and line; SQL URLs still ingest as SQL; a scheme Ghaf does not read is one clear line.
"""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ghaf.data import get_dataset, ingest, read_dataset
from ghaf.data.store import list_datasets
from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit import export_records
from ghaf.settings import load_settings

TABLE = pa.table(
    {
        "customer_id": pa.array([1, 2, 3, 4], pa.int64()),
        "email": ["a@x.ae", "b@x.ae", "c@x.ae", "d@x.ae"],
        "amount": [1.5, 2.0, 3.25, 4.0],
    }
)
PII = {"columns": {"email": {"type": "string", "tag": "pii"}}}


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Iterator[Any]:
    """A client of the emulator; the environment carries its credentials (as for a home)."""
    import boto3

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    yield boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _bucket(s3: Any, region: str) -> str:
    name = f"src-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def _put(s3: Any, bucket: str, key: str, table: pa.Table) -> str:
    buffer = io.BytesIO()
    if key.endswith(".csv"):
        pacsv.write_csv(table, buffer)
    else:
        pq.write_table(table, buffer)
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return f"s3://{bucket}/{key}"


@pytest.fixture(scope="module")
def home(s3: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("objects")
    settings = load_settings(
        home=root / "home", artifact_region="ae-auh-1", s3_endpoint_url=s3_endpoint
    )
    with init_home(settings) as platform:
        yield platform


@pytest.mark.parametrize("key", ["in/customers.csv", "in/customers.parquet"])
def test_an_object_ingests_as_the_same_rows_as_the_file(s3: Any, home: Platform, key: str) -> None:
    bucket = _bucket(s3, "ae-auh-1")
    url = _put(s3, bucket, key, TABLE)
    name = f"obj-{key.rsplit('.', 1)[1]}"
    version = ingest(home, home.admin(), url, name, contract=PII)
    assert version.source == url and version.column_tags == {"email": "pii"}
    assert read_dataset(home, name).equals(TABLE)
    scratch = Path(home.settings.home) / "scratch"
    assert not scratch.exists() or not any(scratch.rglob("object*"))  # the copy is gone


def test_pii_in_a_bucket_really_elsewhere_is_refused_before_reading(
    s3: Any, home: Platform
) -> None:
    bucket = _bucket(s3, "eu-west-1")
    url = _put(s3, bucket, "people.parquet", TABLE)
    with pytest.raises(PolicyViolationError) as caught:
        ingest(home, home.admin(), url, "abroad", contract=PII)
    assert caught.value.headline == (
        f"residency: source {url} is tagged pii and may not be stored in eu-west-1 (allowed: ae-*)"
    )
    assert "abroad" not in list_datasets(home)
    with home.read_session() as session:
        records = [
            orjson.loads(line) for line in export_records(session, resource="dataset:abroad")
        ]
    assert [(r["action"], r["outcome"]) for r in records] == [("dataset.ingest", "denied")]
    assert records[0]["details"]["source_region"] == "eu-west-1"
    # Unclassified data from the same bucket is not bound to a region: it ingests.
    plain = _put(s3, bucket, "amounts.parquet", TABLE.select(["customer_id", "amount"]))
    assert ingest(home, home.admin(), plain, "amounts").num_rows == 4


def test_a_malformed_object_is_named_by_its_url_and_line(s3: Any, home: Platform) -> None:
    bucket = _bucket(s3, "ae-auh-1")
    s3.put_object(Bucket=bucket, Key="bad.csv", Body=b"a,b\n1,2\n3\n")
    with pytest.raises(InvalidInputError) as caught:
        ingest(home, home.admin(), f"s3://{bucket}/bad.csv", "bad")
    assert caught.value.headline.startswith(f"s3://{bucket}/bad.csv: line 3")
    with pytest.raises(InvalidInputError, match="no such object"):
        ingest(home, home.admin(), f"s3://{bucket}/missing.parquet", "bad")


def test_sql_urls_still_ingest_and_an_unknown_scheme_is_one_line(
    home: Platform, tmp_path: Path
) -> None:
    database = tmp_path / "src.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, v REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, 0.5), (2, 1.5)])
    version = ingest(home, home.admin(), f"sqlite:///{database}", "sql", query="SELECT * FROM t")
    assert version.num_rows == 2 and get_dataset(home, "sql").schema.names == ["id", "v"]
    with pytest.raises(InvalidInputError) as caught:
        ingest(home, home.admin(), "ftp://host/file.csv", "nope")
    assert caught.value.headline == "source: ftp:// is not a scheme Ghaf reads"
    assert "s3://BUCKET/KEY.parquet|csv" in (caught.value.hint or "")
    with pytest.raises(InvalidInputError, match=r"KEY\.parquet"):
        ingest(home, home.admin(), "s3://bucket/file.xlsx", "nope")
    cli = subprocess.run(
        [sys.executable, "-m", "ghaf", "data", "ingest", "ftp://host/f.csv", "--name", "n"],
        capture_output=True,
        text=True,
        env={**os.environ, "GHAF_HOME": str(home.settings.home)},
        timeout=120,
    )
    assert cli.returncode != 0 and "ftp:// is not a scheme Ghaf reads" in cli.stderr
    assert "Traceback" not in cli.stderr
