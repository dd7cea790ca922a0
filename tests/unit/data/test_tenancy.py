"""A dataset name stays its first project's: another project can neither add a version
to it nor get one of its versions back by writing the same content."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.data import get_dataset, list_versions, write_dataset
from ghaf.data.ingest import ingest
from ghaf.data.store import check_dataset_project, dataset_projects, version_projects
from ghaf.data.stream import write_micro_batch
from ghaf.errors import AlreadyExistsError
from ghaf.platform import Platform
from ghaf.projects import create_project


@pytest.fixture
def two_projects(platform: Platform) -> tuple[Platform, Platform]:
    for project in ("fraud", "retail"):
        create_project(platform, platform.admin(), project)
    return platform.in_project("fraud"), platform.in_project("retail")


def _table() -> pa.Table:
    return pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]})


def test_another_project_cannot_write_a_version_of_a_dataset(
    two_projects: tuple[Platform, Platform], tmp_path: Path
) -> None:
    fraud, retail = two_projects
    first = write_dataset(fraud, fraud.admin(), "tx", _table(), source="test")
    stored = set(fraud.artifacts.digests())

    with pytest.raises(
        AlreadyExistsError, match="is taken in this home; names are unique across projects"
    ):
        write_dataset(retail, retail.admin(), "tx", _table(), source="test")
    with pytest.raises(AlreadyExistsError, match="is taken in this home"):
        write_dataset(retail, retail.admin(), "tx", pa.table({"id": [9]}), source="test")
    with pytest.raises(AlreadyExistsError):
        check_dataset_project(retail, "tx")
    check_dataset_project(fraud, "tx")
    check_dataset_project(retail, "new-name")

    # Identical content through ingest (record_version itself): refused, not fraud's version.
    path = tmp_path / "tx.parquet"
    pq.write_table(_table(), path)
    with pytest.raises(AlreadyExistsError, match="is taken in this home"):
        ingest(retail, retail.admin(), path, "tx")
    # Nor by records appended to it: the keys fraud holds are not looked at.
    with pytest.raises(AlreadyExistsError, match="is taken in this home"):
        write_micro_batch(
            retail, retail.admin(), "tx", [{"id": 4, "amount": 4.5}], ["k4"], source="test"
        )

    assert [v.version for v in list_versions(fraud, "tx")] == [1]
    assert version_projects(fraud, "tx") == {1: "fraud"}
    assert dataset_projects(fraud) == [{"name": "tx", "latest": 1, "project": "fraud"}]
    assert get_dataset(fraud, "tx") == first
    assert set(fraud.artifacts.digests()) == stored  # nothing refused left a blob

    again = write_dataset(fraud, fraud.admin(), "tx", _table(), source="test")
    assert again.version == 1  # its own project's identical content is still deduplicated


def test_records_of_another_project_s_stream_are_refused_before_its_keys_are_read(
    two_projects: tuple[Platform, Platform],
) -> None:
    """Keys the owner holds already: refused, not answered "nothing new" (which would say
    that the other project holds them)."""
    fraud, retail = two_projects
    write_micro_batch(fraud, fraud.admin(), "events", [{"id": 1}], ["k1"], source="test")
    for keys in (["k1"], ["k2"]):
        with pytest.raises(AlreadyExistsError, match="is taken in this home"):
            write_micro_batch(retail, retail.admin(), "events", [{"id": 1}], keys, source="test")
    assert [v.version for v in list_versions(fraud, "events")] == [1]
