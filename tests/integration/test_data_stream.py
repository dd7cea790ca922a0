"""Stream ingestion from NATS JetStream: kill -9 the consumer, restart, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.compute as pc
import pytest

from ghaf.data import get_dataset, read_dataset
from ghaf.data.stream import write_micro_batch
from ghaf.errors import NotFoundError
from ghaf.events.nats import NatsEventBus
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings

pytestmark = [pytest.mark.service, pytest.mark.slow]

CONSUMER = """
import sys
from ghaf.data.stream import ingest_stream
from ghaf.platform import Platform
from ghaf.settings import load_settings
home, url, subject, durable = sys.argv[1:5]
with Platform(load_settings(home=home, event_bus_url=url)) as platform:
    ingest_stream(platform, platform.admin(), subject, "events", consumer=durable,
                  batch_size=15, timeout=1.0, idle_batches=int(sys.argv[5]))
"""


def _short_ack_wait(url: str, subject: str, durable: str) -> None:
    """Create the durable consumer with a 2 s ack wait so redelivery after a kill is quick."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    async def create() -> None:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_consumer(
            "GHAF",
            ConsumerConfig(
                durable_name=durable,
                filter_subject=f"ghaf.{subject}",
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=2.0,
            ),
        )
        await nc.close()

    asyncio.run(create())


def _versions(platform: Platform) -> int:
    try:
        return get_dataset(platform, "events").version
    except NotFoundError:
        return 0


def test_kill_9_consumer_loses_and_duplicates_nothing(nats_url: str, tmp_path: Path) -> None:
    home = tmp_path / "stream-home"
    settings = load_settings(home=home, event_bus_url=nats_url)
    platform = init_home(settings)
    subject, durable = f"test.s{uuid.uuid4().hex[:8]}", f"d{uuid.uuid4().hex[:8]}"
    bus = NatsEventBus(nats_url)
    _short_ack_wait(nats_url, subject, durable)
    total = 240
    for i in range(total):
        bus.publish(subject, {"id": i, "value": i * 1.5}, msg_id=f"{subject}-{i}")
    bus.close()

    def start(idle: int) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-c", CONSUMER, str(home), nats_url, subject, durable, str(idle)]
        return subprocess.Popen(args, env={**os.environ, "PYTHONWARNINGS": "ignore"})

    kills = 0
    for target in (2, 5):  # kill -9 mid-stream, twice, at different points
        consumer = start(idle=30)
        deadline = time.monotonic() + 60
        while _versions(platform) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        consumer.send_signal(signal.SIGKILL)
        consumer.wait()
        kills += 1
    assert kills == 2 and _versions(platform) >= 5
    final = start(idle=5)  # runs until 5 empty fetches (redeliveries arrive after 2 s)
    assert final.wait(timeout=120) == 0

    table = read_dataset(platform, "events")
    ids = sorted(table.column("id").to_pylist())
    assert ids == list(range(total))  # every message once: none lost, none duplicated
    assert pc.count_distinct(table.column("_key")).as_py() == total
    platform.close()


def test_redelivered_batch_after_commit_is_skipped(platform: Platform) -> None:
    records = [{"id": i} for i in range(5)]
    keys = [str(i) for i in range(5)]
    first = write_micro_batch(platform, platform.admin(), "s", records, keys, source="t")
    assert first is not None and first.num_rows == 5
    # The consumer died after the commit and before the ack: the bus redelivers.
    again = write_micro_batch(platform, platform.admin(), "s", records, keys, source="t")
    assert again is None
    more = write_micro_batch(
        platform, platform.admin(), "s", [{"id": 5}, {"id": 4}], ["5", "4"], source="t"
    )
    assert more is not None and more.version == 2
    assert sorted(read_dataset(platform, "s").column("id").to_pylist()) == list(range(6))
