"""Erasure and retention on a stream's appended versions (issue 22, item 5).

Five micro-batches, the subject's rows in the second: erasing the subject destroys that
part, and with it every version that reads it (3 and later share it); the first version,
which does not read it, stays. The latest is rewritten without the subject, the stream
goes on appending after it, and the certificate verifies. Retention never destroys a part
a kept version reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from ghaf.data import get_dataset, list_versions, read_dataset
from ghaf.data.store import version_parts
from ghaf.data.stream import write_micro_batch
from ghaf.errors import GhafError
from ghaf.home import init_home
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.privacy import (
    erase_dataset,
    erase_subject,
    plan_retention,
    run_retention,
    verify_certificate,
)
from ghaf.privacy.shred import erased_digests
from ghaf.settings import load_settings

SUBJECT = 42


def _batch(platform: Platform, name: str, batch: int, customers: list[int]) -> None:
    records = [{"tx": f"{batch}-{i}", "customer_id": c} for i, c in enumerate(customers)]
    keys = [str(r["tx"]) for r in records]
    write_micro_batch(platform, platform.admin(), name, records, keys, source="stream:t")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    settings = load_settings(
        home=tmp_path_factory.mktemp("parts") / "home",
        retention={"datasets": {"unclassified": 1}, "keep_latest": True},
    )
    with init_home(settings) as platform:
        for batch, customers in enumerate([[1, 2], [3, SUBJECT, 4], [5], [6, 7], [8]]):
            _batch(platform, "events", batch, customers)
        yield platform


def test_erasing_a_subject_destroys_its_part_for_every_version_reading_it(home: Platform) -> None:
    versions = list_versions(home, "events")
    parts = {v.version: version_parts(home, v) for v in versions}
    held = parts[2][1].digest  # the second batch's part
    certificate = erase_subject(home, home.admin(), "customer_id", str(SUBJECT))
    body = certificate["certificate"]
    assert {(e["node"], e["digest"]) for e in body["destroyed"]} == {
        (f"dataset:events:{n}", held) for n in range(2, 6)
    }
    with pytest.raises(GhafError):
        home.artifacts.read_bytes(held)
    for number in range(2, 6):  # each version that read the part is gone with it
        with pytest.raises(GhafError):
            read_dataset(home, f"events:{number}")
    assert read_dataset(home, "events:1").column("customer_id").to_pylist() == [1, 2]
    rewritten = body["rewritten"]
    assert [(r["from"], r["to"], r["rows_removed"]) for r in rewritten] == [
        ("dataset:events:5", "dataset:events:6", 1)
    ]
    latest = read_dataset(home, "events:6").column("customer_id").to_pylist()
    assert latest == [1, 2, 3, 4, 5, 6, 7, 8]
    assert verify_certificate(home, certificate, value=str(SUBJECT))["ok"]
    # The stream goes on after the erasure: appended to the rewritten version.
    _batch(home, "events", 5, [9])
    after = get_dataset(home, "events")
    assert after.version == 7 and len(version_parts(home, after)) == 2
    assert read_dataset(home, "events").column("customer_id").to_pylist()[-2:] == [8, 9]
    assert held in erased_digests(home)


def test_retention_keeps_every_part_a_kept_version_reads(home: Platform) -> None:
    later = utcnow() + timedelta(days=30)  # every version is past its day, but the latest
    plan = plan_retention(home, now=later)
    latest = get_dataset(home, "events")
    kept = {p.digest for p in version_parts(home, latest)}
    listed = {e.name for e in plan.expired if e.kind == "dataset_version"}
    for node, digests in plan.parts.items():
        assert node in listed and not set(digests) & kept
    # Version 6's file is the latest's (7) first part: kept, so 6 is not listed; version
    # 1's file no kept version reads (6 was rewritten whole): it goes.
    assert "dataset:events:6" not in listed
    assert plan.parts["dataset:events:1"] == [list_versions(home, "events")[0].digest]
    rows = read_dataset(home, "events").num_rows
    run_retention(home, home.admin(), now=later)
    assert read_dataset(home, "events").num_rows == rows  # the latest lost nothing
    assert read_dataset(home, "events:6").num_rows == rows - 1  # nor the version it extends
    with pytest.raises(GhafError):
        read_dataset(home, "events:1")


def test_erasing_one_version_of_a_stream_takes_the_versions_sharing_its_parts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = load_settings(home=tmp_path_factory.mktemp("parts-ds") / "home")
    with init_home(settings) as platform:
        for batch in range(3):
            _batch(platform, "clicks", batch, [batch])
        certificate = erase_dataset(platform, platform.admin(), "clicks:2")
        nodes = {e["node"] for e in certificate["certificate"]["destroyed"]}
        # 2 reads 1's part, 3 appends to 2 (downstream): a part belongs to each reader.
        assert nodes == {"dataset:clicks:1", "dataset:clicks:2", "dataset:clicks:3"}
        for number in (1, 2, 3):
            with pytest.raises(GhafError):
                read_dataset(platform, f"clicks:{number}")
