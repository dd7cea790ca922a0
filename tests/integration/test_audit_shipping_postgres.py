"""Audit shipping on PostgreSQL: one shipper per sink across processes (an advisory
lock), and every event delivered once, in order, from the cursor in the database."""

from __future__ import annotations

from pathlib import Path

import orjson

from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit import export_records
from ghaf.security.tls import make_dev_pki
from ghaf.settings import load_settings
from ghaf.shipping import ship_once, sink_status
from ghaf.shipping.shipper import _sink_lock
from tests.unit.shipping.receivers import HttpReceiver
from tests.unit.shipping.test_shipping import TOKEN, events


def test_a_held_sink_is_skipped_and_the_holder_s_cursor_is_shared(
    tmp_path: Path, postgres_url: str
) -> None:
    pki = make_dev_pki(tmp_path / "pki")
    http = HttpReceiver(pki, TOKEN)
    sink = {"url": f"https://127.0.0.1:{http.port}/in", "ca_file": str(pki.ca_cert)}
    settings = load_settings(
        home=tmp_path / "home",
        metadata_url=postgres_url,
        audit_shipping={"sinks": {"collector": sink | {"token": TOKEN, "batch_size": 4}}},
    )
    try:
        with init_home(settings) as platform, Platform(settings) as other:
            for index in range(3):
                events(platform, f"pg{index}")
            with _sink_lock(other, "collector") as held:  # another process is shipping
                assert held
                busy = ship_once(platform)
                assert [s.state for s in busy.sinks] == ["busy"] and http.keys == []
            done = ship_once(platform)
            assert done.sinks[0].state == "shipped"
            again = ship_once(other)  # the other process sees the shared cursor
            assert again.sinks[0].state == "idle" and again.shipped == 0
            (status,) = sink_status(other)
            with platform.read_session() as session:
                records = list(export_records(session))
    finally:
        http.close()
    got = http.records
    assert [r["seq"] for r in got] == list(range(1, len(got) + 1))
    assert status.lag == 0 and status.cursor == len(got) == status.shipped
    assert len(got) >= 6 and [orjson.loads(line) for line in records][: len(got)] == got
