"""Deliveries reach real receivers on 127.0.0.1: an e-mail at an SMTP server, Alertmanager-
style webhooks, PagerDuty Events v2 trigger -> acknowledge -> resolve with ONE dedup key as
the incident is raised, acked and resolved, ServiceNow's state codes, the event bus; a
receiver that fails is retried with backoff from the outbox and never sent a row twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ghaf.alerts import Alert, deliver_outbox
from ghaf.alerts.outbox import outbox
from ghaf.home import init_home
from ghaf.incidents import get_incident, ingest_alerts, lifecycle, resolve_alert
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings
from ghaf.testing.people import person
from tests.unit.alerts.receivers import HttpReceiver, Mailbox, http_receiver, smtp_server

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"


@pytest.fixture
def web() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def mail() -> Iterator[Mailbox]:
    with smtp_server() as mailbox:
        yield mailbox


def _alerting(
    settings: GhafSettings, web: HttpReceiver, mail: Mailbox, **extra: object
) -> GhafSettings:
    alerting = settings.alerting.model_validate(
        {
            "receivers": {
                "hook": {"kind": "webhook", "url": f"{web.url}/hook"},
                "mail": {"kind": "email", "smtp_port": mail.port, "mail_to": ["oncall@bank.ae"]},
                "pd": {"kind": "pagerduty", "url": f"{web.url}/pd", "routing_key": ROUTING_KEY},
                "snow": {"kind": "servicenow", "url": f"{web.url}/snow"},
                "bus": {"kind": "bus"},
            },
            "routes": [
                {"match": {"team": "fraud"}, "receivers": ["hook", "mail", "pd", "snow", "bus"]}
            ],
            "group_wait_s": 0,
            **extra,
        }
    )
    return settings.model_copy(update={"alerting": alerting})


@pytest.fixture
def wired(settings: GhafSettings, web: HttpReceiver, mail: Mailbox) -> Iterator[Platform]:
    with init_home(_alerting(settings, web, mail)) as platform:
        yield platform


@pytest.fixture
def sre(wired: Platform) -> Actor:
    return person(wired, "sam", ["sre"])


DOWN = Alert(
    "FraudScoreDrift",
    {"team": "fraud", "deployment": "fraud"},
    severity="critical",
    summary="PSI 0.4 on amount",
    deployment="fraud",
    model_version="fraud:3",
)


def test_raise_ack_resolve_reach_pagerduty_with_one_dedup_key_and_the_others(
    wired: Platform, sre: Actor, web: HttpReceiver, mail: Mailbox
) -> None:
    consumer = wired.events.durable_consumer("alert.>", "test")
    result = ingest_alerts(wired, sre, [DOWN], now=T0)
    number = result.opened[0]
    assert deliver_outbox(wired, sre, now=T0).failed == 0
    lifecycle.acknowledge(wired, sre, number, at=T0 + timedelta(minutes=3))
    deliver_outbox(wired, sre, now=T0 + timedelta(minutes=3))
    lifecycle.resolve(wired, sre, number, "rolled back", at=T0 + timedelta(minutes=20))
    deliver_outbox(wired, sre, now=T0 + timedelta(minutes=20))

    pd = [p.body for p in web.at("/pd")]
    assert [e["event_action"] for e in pd] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pd} == {DOWN.fingerprint}
    assert {e["routing_key"] for e in pd} == {ROUTING_KEY}
    assert pd[0]["payload"] == {
        "summary": f"{number}: PSI 0.4 on amount",
        "severity": "critical",
        "source": "fraud",
        "custom_details": {"priority": "P1", "model_version": "fraud:3"},
    }
    snow = [p.body for p in web.at("/snow")]
    assert [s["state"] for s in snow] == ["1", "2", "6"]
    assert snow[0]["short_description"] == "PSI 0.4 on amount"
    assert (snow[0]["impact"], snow[0]["urgency"], snow[0]["priority"]) == ("1", "1", "1")
    assert {s["correlation_id"] for s in snow} == {DOWN.fingerprint}
    hooks = web.at("/hook")
    assert len(hooks) == 1 and hooks[0].body["status"] == "firing"
    assert hooks[0].body["alerts"][0]["fingerprint"] == DOWN.fingerprint
    assert hooks[0].headers["idempotency-key"]
    assert len(mail.messages) == 1
    assert mail.messages[0]["Subject"] == "[FIRING:1] FraudScoreDrift"
    assert mail.recipients == [["oncall@bank.ae"]]
    assert DOWN.fingerprint in mail.messages[0].get_payload()
    events = consumer.fetch(10, timeout=1)
    assert [(d.event.subject, d.event.data["fingerprint"]) for d in events] == [
        ("alert.fired", DOWN.fingerprint)
    ]
    # nothing is sent twice
    assert deliver_outbox(wired, sre, now=T0 + timedelta(hours=1)).sent == 0
    assert len(web.at("/pd")) == 3

    resolve_alert(wired, sre, DOWN.fingerprint, now=T0 + timedelta(minutes=30))
    deliver_outbox(wired, sre, now=T0 + timedelta(minutes=30))
    assert web.at("/hook")[-1].body["status"] == "resolved"
    assert mail.messages[-1]["Subject"] == "[RESOLVED:1] FraudScoreDrift"
    _, timeline = get_incident(wired, number)
    assert [e.kind for e in timeline] == ["opened", "alert", "ack", "resolve"]


def test_a_failing_receiver_is_retried_with_backoff_under_one_idempotency_key(
    wired: Platform, sre: Actor, web: HttpReceiver
) -> None:
    web.fail = 2 * 3  # hook, pd and snow each fail twice (one POST each per pass)
    ingest_alerts(wired, sre, [DOWN], now=T0)
    first = deliver_outbox(wired, sre, now=T0)
    assert (first.sent, first.retried) == (2, 3)  # the e-mail and the bus went
    assert deliver_outbox(wired, sre, now=T0 + timedelta(seconds=1)).retried == 0  # not due
    assert deliver_outbox(wired, sre, now=T0 + timedelta(seconds=2)).retried == 3
    pending = outbox(wired, status="pending")
    assert {row["attempts"] for row in pending} == {2}
    assert all("HTTPStatusError" in str(row["last_error"]) for row in pending)
    # the second retry waits twice as long: 2 s, then 4 s
    assert deliver_outbox(wired, sre, now=T0 + timedelta(seconds=5)).sent == 0
    assert deliver_outbox(wired, sre, now=T0 + timedelta(seconds=6)).sent == 3
    assert [p.body["event_action"] for p in web.at("/pd")] == ["trigger"]
    keys = {row["key"] for row in outbox(wired) if row["receiver"] == "hook"}
    assert {p.headers["idempotency-key"] for p in web.at("/hook")} == keys


def test_a_delivery_out_of_attempts_is_kept_as_failed(
    settings: GhafSettings, web: HttpReceiver, mail: Mailbox
) -> None:
    changed = _alerting(settings, web, mail, max_attempts=2)
    changed.alerting.receivers["hook"].url = "http://127.0.0.1:9/closed"
    changed.alerting.routes[0].receivers = ["hook"]
    with init_home(changed) as platform:
        sre = person(platform, "sam", ["sre"])
        ingest_alerts(platform, sre, [DOWN], now=T0)
        assert deliver_outbox(platform, sre, now=T0).retried == 1
        assert deliver_outbox(platform, sre, now=T0 + timedelta(minutes=1)).failed == 1
        [row] = outbox(platform)
        assert (row["status"], row["attempts"]) == ("failed", 2)
        assert "ConnectError" in str(row["last_error"])


def test_alerts_of_one_group_go_out_together_after_group_wait(
    settings: GhafSettings, web: HttpReceiver, mail: Mailbox
) -> None:
    changed = _alerting(settings, web, mail, group_wait_s=30, group_by=["alertname"])
    changed.alerting.routes[0].receivers = ["hook"]
    with init_home(changed) as platform:
        sre = person(platform, "sam", ["sre"])
        east = Alert("LatencyHigh", {"team": "fraud", "region": "ae-east"})
        west = Alert("LatencyHigh", {"team": "fraud", "region": "ae-west"})
        ingest_alerts(platform, sre, [east], now=T0)
        ingest_alerts(platform, sre, [west], now=T0 + timedelta(seconds=10))
        assert deliver_outbox(platform, sre, now=T0 + timedelta(seconds=29)).sent == 0
        assert deliver_outbox(platform, sre, now=T0 + timedelta(seconds=40)).sent == 2
        [post] = web.at("/hook")
        assert sorted(a["labels"]["region"] for a in post.body["alerts"]) == ["ae-east", "ae-west"]


def test_a_critical_alert_inhibits_warnings_on_the_same_deployment(
    settings: GhafSettings, web: HttpReceiver, mail: Mailbox
) -> None:
    rule = {
        "source_match": {"severity": "critical"},
        "target_match": {"severity": "warning"},
        "equal": ["deployment"],
    }
    with init_home(_alerting(settings, web, mail, inhibit_rules=[rule])) as platform:
        sre = person(platform, "sam", ["sre"])
        down = Alert("Down", {"team": "fraud", "deployment": "fraud"}, severity="critical")
        slow = Alert("Slow", {"team": "fraud", "deployment": "fraud"}, severity="warning")
        other = Alert("Slow", {"team": "fraud", "deployment": "loans"}, severity="warning")
        result = ingest_alerts(platform, sre, [down, slow, other], now=T0)
        assert result.inhibited == 1 and len(result.opened) == 2
        from ghaf.incidents.ingest import list_alerts

        status = {
            (a["name"], a["labels"]["deployment"]): a["status"] for a in list_alerts(platform)
        }
        assert status == {
            ("Down", "fraud"): "firing",
            ("Slow", "fraud"): "inhibited",
            ("Slow", "loans"): "firing",
        }


def test_a_project_delivers_only_what_it_owes(
    wired: Platform, sre: Actor, web: HttpReceiver
) -> None:
    from ghaf.projects import create_project

    admin = wired.admin()
    create_project(wired, admin, "retail")
    ingest_alerts(wired, sre, [DOWN], now=T0)
    retail = wired.in_project("retail")
    assert deliver_outbox(retail, admin, now=T0).sent == 0 and outbox(retail) == []
    assert web.posts == []
    assert deliver_outbox(wired, sre, now=T0).sent == 5
