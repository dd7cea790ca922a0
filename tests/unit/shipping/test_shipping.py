"""Audit shipping to a real syslog-over-TLS receiver and a real HTTPS JSON collector.

What a compliance team relies on: a sink that is down for 60 s receives every audit
event once it is back, in order, with no duplicates; a shipper killed with SIGKILL in the
middle of a delivery loses nothing when it restarts, and what it sends twice is the same
records, marked by seq and hash so the receiver drops them; wrong settings name the field.

Time: the outage is 60 s on the shipper's clock (``ship_once(now=...)``), advanced 1 s a
pass; the receivers are down while that clock is under t0 + 60 s. The backoff (1 s
doubling, capped at 60 s) makes the tries at 0, 1, 3, 7, 15 and 31 s fail and the one at
63 s deliver: the real schedule, without sleeping through it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ghaf.cli.exit_codes import exit_code_for
from ghaf.errors import BackendUnavailableError, ConfigError
from ghaf.home import init_home
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit import export_records
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.security.tls import DevPki, make_dev_pki
from ghaf.settings import load_settings
from ghaf.shipping import ship_once, sink_status
from tests.unit.shipping.receivers import HttpReceiver, SyslogReceiver

TOKEN = "collector-secret-token"
OUTAGE = timedelta(seconds=60)
SYSLOG = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>\[(?:[^\]\\]|\\.)*\]) \xef\xbb\xbf(?P<msg>.*)\Z",
    re.S,
)
PARAM = re.compile(r' ([^ ="\]]+)="((?:[^"\\\]]|\\.)*)"')
SEVERITY = {"allowed": 6, "failed": 3, "denied": 4}


@dataclass
class Clock:
    now: datetime


def parse(message: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """An RFC 5424 message's header and SD params, and its MSG as JSON."""
    match = SYSLOG.match(message)
    assert match is not None, message[:200]
    sd = match["sd"].decode()
    sd_id = sd[1:].split(" ", 1)[0]
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in PARAM.findall(sd)}
    header = {
        "pri": int(match["pri"]),
        "ts": match["ts"].decode(),
        "app": match["app"].decode(),
        "msgid": match["msgid"].decode(),
        "sd_id": sd_id,
        **params,
    }
    return header, json.loads(match["msg"])


def exported(platform: Platform, upto: int) -> list[dict[str, Any]]:
    with platform.read_session() as session:
        return [json.loads(line) for line in export_records(session)][:upto]


def events(platform: Platform, name: str) -> None:
    """An access event (a refused credential) and an operation (a new project)."""
    mallory = Actor("mallory", credential=None, source="203.0.113.9")
    platform.spine.record_denied(
        mallory, "auth.authenticate", "principal:mallory", "default", 'unknown token "x]"'
    )
    create_project(platform, platform.admin(), name)


def last_event(platform: Platform) -> int:
    """The newest record that is not shipping's own bookkeeping."""
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.seq)
            .where(AuditRecordRow.action != "audit.ship")
            .order_by(AuditRecordRow.seq.desc())
        )
        return int(rows.scalars().first() or 0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_dev_pki(tmp_path_factory.mktemp("pki"))


def _sinks(pki: DevPki, syslog_port: int, http_port: int | None, **extra: Any) -> dict[str, Any]:
    sinks: dict[str, Any] = {
        "siem": {"url": f"syslog+tls://127.0.0.1:{syslog_port}", "ca_file": str(pki.ca_cert)}
        | extra
    }
    if http_port is not None:
        sinks["collector"] = {
            "url": f"https://127.0.0.1:{http_port}/ingest",
            "ca_file": str(pki.ca_cert),
            "token": TOKEN,
            "batch_size": 7,
        }
    return sinks


def test_sinks_down_for_60_s_receive_every_event_in_order_without_duplicates(
    pki: DevPki, tmp_path: Path
) -> None:
    t0 = utcnow()
    clock = Clock(t0)
    modes = iter(["reset", "reset", "reset", "noread", "noread", "noread"])

    def syslog_outage() -> str | None:
        return next(modes) if clock.now < t0 + OUTAGE else None

    def http_outage() -> str | None:
        return "503" if clock.now < t0 + OUTAGE else None

    syslog = SyslogReceiver(pki, syslog_outage)
    http = HttpReceiver(pki, TOKEN, http_outage)
    settings = load_settings(
        home=tmp_path / "home",
        audit_shipping={"sinks": _sinks(pki, syslog.port, http.port, batch_size=5)},
    )
    tried: dict[str, list[int]] = {"siem": [], "collector": []}
    delivered: dict[str, list[int]] = {"siem": [], "collector": []}
    try:
        with init_home(settings) as platform:
            for second in range(0, 71):
                clock.now = t0 + timedelta(seconds=second)
                if second % 10 == 0 or second in (59, 61, 62):
                    events(platform, f"p{second}")
                if second == 40:  # in the outage: behind, failing, nothing lost
                    status = {s.sink: s for s in sink_status(platform, now=clock.now)}
                    assert status["siem"].cursor == 0 and status["siem"].lag >= 10
                    assert status["siem"].attempts == 6
                    assert status["collector"].last_error is not None
                    assert "503" in status["collector"].last_error
                result = ship_once(platform, now=clock.now)
                for done in result.sinks:
                    if done.state in ("failed", "shipped"):
                        tried[done.sink].append(second)
                    if done.state == "shipped":
                        delivered[done.sink].append(second)
            newest = last_event(platform)
            records = exported(platform, newest)
            status = {s.sink: s for s in sink_status(platform, now=clock.now)}
    finally:
        syslog.close()
        http.close()

    backoff = [0, 1, 3, 7, 15, 31, 63]  # 1 s doubling; the first try after 60 s delivers
    for sink in ("siem", "collector"):
        assert tried[sink][:7] == backoff, (sink, tried[sink])
        assert delivered[sink][0] == 63
        assert status[sink].lag == 0 and status[sink].attempts == 0
        assert status[sink].cursor >= newest
    assert syslog.refused == ["reset"] * 3 + ["noread"] * 3
    assert http.refused == [503] * 6

    # Syslog: every record up to the newest event, once, in order, as RFC 5424 says.
    parsed = [parse(m) for m in syslog.messages]
    seqs = [doc["seq"] for _, doc in parsed]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= newest
    assert [doc for _, doc in parsed][:newest] == records
    for header, doc in parsed:
        assert header["pri"] == 13 * 8 + SEVERITY[doc["outcome"]]
        assert header["app"] == "ghaf" and header["msgid"] == doc["action"][:32]
        assert header["sd_id"] == "ghafAudit@32473"
        assert header["seq"] == str(doc["seq"]) and header["hash"] == doc["record_hash"]
        assert header["actor"] == doc["actor"] and header["outcome"] == doc["outcome"]
        assert datetime.fromisoformat(header["ts"]) == datetime.fromisoformat(doc["ts"])
    chain = [doc["prev_hash"] for _, doc in parsed[1:]]
    assert chain == [doc["record_hash"] for _, doc in parsed[:-1]]
    denials = [doc for _, doc in parsed if doc["action"] == "auth.authenticate"]
    assert len(denials) == 11 and {d["outcome"] for d in denials} == {"denied"}
    assert denials[0]["details"] == {"reason": 'unknown token "x]"'}

    # HTTP: the same records, once, in order, batches of at most 7 with their keys.
    got = http.records
    assert [r["seq"] for r in got] == list(range(1, len(got) + 1)) and len(got) >= newest
    assert got[:newest] == records
    assert all(len(batch) <= 7 for batch in http.batches)
    first, last = http.batches[0][0], http.batches[0][-1]
    assert http.keys[0] == f"ghaf-audit-{first['seq']}-{last['seq']}-{last['record_hash'][:16]}"


def test_a_shipper_killed_mid_batch_resends_only_that_batch(
    pki: DevPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syslog = SyslogReceiver(pki)
    syslog.hold_after = 5  # read 5 messages of the first delivery, then stop reading
    home = tmp_path / "home"
    sinks = _sinks(pki, syslog.port, None, batch_size=20, timeout_s=60)
    try:
        with init_home(load_settings(home=home)) as bare:
            for index in range(12):
                events(bare, f"k{index}")
            newest = last_event(bare)
        (home / "ghaf.toml").write_text(_toml(sinks))
        monkeypatch.setenv("GHAF_HOME", str(home))
        log = tmp_path / "shipper.log"
        with log.open("wb") as out:
            shipper = subprocess.Popen(
                [sys.executable, "-m", "ghaf", "audit", "ship", "--once"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "GHAF_HOME": str(home)},
            )
        try:
            assert syslog.holding.wait(60), f"the shipper never delivered: {log.read_text()}"
            os.kill(shipper.pid, signal.SIGKILL)
            assert shipper.wait(30) == -signal.SIGKILL
        finally:
            if shipper.poll() is None:
                shipper.kill()
                shipper.wait(30)
            syslog.done.clear()
            syslog.release.set()
        assert syslog.done.wait(30)
        killed = list(syslog.connections[0])
        assert 5 <= len(killed) <= 20

        with Platform(load_settings(home=home)) as platform:
            assert sink_status(platform)[0].cursor == 0  # never acknowledged: not advanced
            restarted = ship_once(platform)
            assert restarted.failed == []
            records = exported(platform, newest)
            status = sink_status(platform)[0]
    finally:
        syslog.close()

    docs = [parse(m)[1] for m in syslog.messages]
    unique: dict[str, dict[str, Any]] = {}
    for doc in docs:
        previous = unique.setdefault(doc["record_hash"], doc)
        assert previous == doc  # a repeat is the same record, byte for byte
    in_order = list(unique.values())
    assert [d["seq"] for d in in_order] == list(range(1, len(in_order) + 1))
    assert in_order[:newest] == records
    repeated = len(docs) - len(unique)
    assert repeated == len(killed)  # only what the killed delivery got, once more
    assert [parse(m)[1]["seq"] for m in killed] == list(range(1, len(killed) + 1))
    assert status.cursor >= newest and status.lag == 0


def _toml(sinks: dict[str, Any]) -> str:
    lines = []
    for name, sink in sinks.items():
        lines.append(f"[audit_shipping.sinks.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in sink.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("sink", "named"),
    [
        ({"url": "tcp://siem:514"}, "audit_shipping.sinks.siem.url"),
        ({"url": "syslog+tls://siem"}, "audit_shipping.sinks.siem.url"),
        ({"url": "https://u:p@siem/in"}, "audit_shipping.sinks.siem.url"),
        ({"url": "syslog+tls://siem:6514", "token": "t"}, "token is for https"),
        ({"url": "https://siem/in", "username": "u"}, "basic auth needs both"),
        ({"url": "https://siem/in", "cert_file": "/c.pem"}, "cert_file and key_file"),
        ({"url": "https://siem/in", "batch_size": 0}, "audit_shipping.sinks.siem.batch_size"),
        ({"url": "https://siem/in", "sd_id": "a b"}, "audit_shipping.sinks.siem.sd_id"),
    ],
)
def test_wrong_sink_settings_name_the_field(sink: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_settings(audit_shipping={"sinks": {"siem": sink}})


def test_a_bad_sink_name_and_unreadable_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"audit_shipping\.sinks .*sink name 'SIEM!'"):
        load_settings(audit_shipping={"sinks": {"SIEM!": {"url": "https://siem/in"}}})
    missing = tmp_path / "nope.pem"
    sinks = {"siem": {"url": "https://127.0.0.1:9/in", "ca_file": str(missing)}}
    settings = load_settings(home=tmp_path / "home", audit_shipping={"sinks": sinks})
    with init_home(settings) as platform:
        with pytest.raises(ConfigError, match=r"audit_shipping\.sinks\.siem\.ca_file"):
            ship_once(platform)
        sinks = {"siem": {"url": "https://127.0.0.1:9/in", "token_file": str(missing)}}
        platform.settings = load_settings(home=tmp_path / "home", audit_shipping={"sinks": sinks})
        with pytest.raises(ConfigError, match=r"audit_shipping\.sinks\.siem\.token_file"):
            ship_once(platform)


@pytest.fixture
def no_sinks_home(tmp_path: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=tmp_path / "home")) as platform:
        yield platform


def test_no_sinks_is_a_pass_that_writes_nothing(no_sinks_home: Platform) -> None:
    with no_sinks_home.read_session() as session:
        before = len(session.execute(select(AuditRecordRow.seq)).all())
    assert ship_once(no_sinks_home).sinks == ()
    with no_sinks_home.read_session() as session:
        assert len(session.execute(select(AuditRecordRow.seq)).all()) == before


def test_the_doors_show_sink_status_and_ship_on_demand(pki: DevPki, tmp_path: Path) -> None:
    from starlette.testclient import TestClient
    from typer.testing import CliRunner

    from ghaf.cli.main import app as cli
    from ghaf.server.app import create_app
    from ghaf.testing.people import mint

    down = {"now": True}
    http = HttpReceiver(pki, TOKEN, lambda: "503" if down["now"] else None)
    home = tmp_path / "home"
    sinks = {"collector": _sinks(pki, 1, http.port)["collector"]}
    try:
        with init_home(load_settings(home=home)) as bare:
            tokens = {
                who: mint(bare, who, [role], project="*", bind_on="*")
                for who, role in (("ada", "auditor"), ("sam", "sre"), ("vic", "viewer"))
            }
        (home / "ghaf.toml").write_text(_toml(sinks))
        runner = CliRunner()
        failed = runner.invoke(cli, ["--home", str(home), "audit", "ship"])
        assert isinstance(failed.exception, BackendUnavailableError), failed.output
        assert exit_code_for(failed.exception) == 9  # what `ghaf` exits with
        assert "audit sink collector did not acknowledge" in failed.exception.headline
        assert "collector: failed, 0 shipped, cursor 0" in failed.output
        assert "HTTP 503" in failed.output
        down["now"] = False
        with Platform(load_settings(home=home)) as platform:
            api = TestClient(create_app(platform))

            def call(who: str, method: str, path: str) -> Any:
                headers = {"authorization": f"Bearer {tokens[who]}"}
                return api.request(method, f"/api/v1/audit/sinks{path}", headers=headers)

            seen = call("sam", "GET", "")
            assert seen.status_code == 200, seen.text
            (status,) = seen.json()["sinks"]
            assert status["sink"] == "collector" and status["cursor"] == 0
            assert status["attempts"] == 1 and "HTTP 503" in status["last_error"]
            assert status["lag"] > 0
            assert call("vic", "GET", "").status_code == 403
            assert call("sam", "POST", "/ship").status_code == 403
            assert http.keys == []  # refused before anything was sent
            shipped = call("ada", "POST", "/ship")
            assert shipped.status_code == 200, shipped.text
            assert shipped.json()["sinks"][0]["state"] == "shipped"
        listed = runner.invoke(cli, ["--home", str(home), "audit", "sinks", "-o", "json"])
        assert listed.exit_code == 0, listed.output
        (after,) = json.loads(listed.output)["sinks"]
        assert after["lag"] == 0 and after["attempts"] == 0 and after["cursor"] > 0
        assert [r["seq"] for r in http.records] == list(range(1, after["cursor"] + 1)), http.keys
    finally:
        http.close()
