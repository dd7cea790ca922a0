"""Incidents from alerts: priority from the matrix, one open incident per fingerprint,
only the allowed transitions, RBAC on each change, an audit record and a timeline entry
for each, and MTTA/MTTR per priority from the recorded times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ghaf.alerts import Alert
from ghaf.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.incidents import get_incident, incident_metrics, ingest_alerts, lifecycle, list_incidents
from ghaf.incidents.states import STATES, TRANSITIONS
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings
from ghaf.testing.people import person

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SERVICENOW = {(1, 1): 1, (1, 2): 2, (1, 3): 3, (2, 1): 2, (2, 2): 3, (2, 3): 4, (3, 1): 3,
              (3, 2): 4, (3, 3): 5}  # fmt: skip


@pytest.fixture
def sre(platform: Platform) -> Actor:
    return person(platform, "sam", ["sre"])


def _alert(name: str = "LatencyHigh", *, impact: int = 2, urgency: int = 2, **labels: str) -> Alert:
    return Alert(name, {"deployment": "fraud", **labels}, impact=impact, urgency=urgency)


def _open(platform: Platform, actor: Actor, alert: Alert | None = None, at: datetime = T0) -> str:
    result = ingest_alerts(platform, actor, [alert or _alert()], now=at)
    return (result.opened or result.updated)[0]


def _audit(platform: Platform, resource: str) -> list[tuple[str, str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.action, AuditRecordRow.actor, AuditRecordRow.outcome)
            .where(AuditRecordRow.resource == resource)
            .order_by(AuditRecordRow.seq)
        ).all()
    return [(a, b, c) for a, b, c in rows]


@pytest.mark.parametrize(("impact", "urgency"), sorted(SERVICENOW))
def test_priority_comes_from_servicenow_s_matrix_by_default(
    platform: Platform, sre: Actor, impact: int, urgency: int
) -> None:
    number = _open(platform, sre, _alert(impact=impact, urgency=urgency))
    incident, _ = get_incident(platform, number)
    assert (incident.impact, incident.urgency) == (impact, urgency)
    assert incident.priority == SERVICENOW[(impact, urgency)]


def test_severity_gives_impact_and_urgency_when_the_alert_does_not(
    platform: Platform, sre: Actor
) -> None:
    critical = _open(platform, sre, Alert("Down", {"deployment": "a"}, severity="critical"))
    info = _open(platform, sre, Alert("Slow", {"deployment": "a"}, severity="info"))
    assert get_incident(platform, critical)[0].priority == 1
    assert get_incident(platform, info)[0].priority == 5


def test_a_matrix_in_settings_replaces_the_default(settings: GhafSettings) -> None:
    from ghaf.home import init_home

    changed = settings.model_copy(
        update={
            "alerting": settings.alerting.model_copy(
                update={"priority_matrix": [[1, 1, 1], [2, 2, 2], [5, 5, 5]]}
            )
        }
    )
    with init_home(changed) as platform:
        actor = person(platform, "sam", ["sre"])
        number = _open(platform, actor, _alert(impact=3, urgency=1))
        assert get_incident(platform, number)[0].priority == 5


def test_repeats_update_one_open_incident_and_a_resolved_one_is_not_reused(
    platform: Platform, sre: Actor
) -> None:
    first = ingest_alerts(platform, sre, [_alert() for _ in range(1)], now=T0)
    again = ingest_alerts(
        platform, sre, [Alert("LatencyHigh", {"deployment": "fraud"}, id=f"o{i}") for i in range(4)]
    )
    assert again.opened == [] and again.updated == first.opened
    incident, timeline = get_incident(platform, first.opened[0])
    assert incident.alert_count == 5
    assert [e.kind for e in timeline] == ["opened", "alert", "alert"]
    # the same occurrences re-sent are not counted twice
    resent = ingest_alerts(
        platform, sre, [Alert("LatencyHigh", {"deployment": "fraud"}, id=f"o{i}") for i in range(4)]
    )
    assert (resent.received, resent.duplicates) == (0, 4)
    assert get_incident(platform, first.opened[0])[0].alert_count == 5
    lifecycle.resolve(platform, sre, first.opened[0], "scaled up")
    after = ingest_alerts(platform, sre, [_alert()])
    assert after.opened and after.opened != first.opened
    _, new_timeline = get_incident(platform, after.opened[0])
    assert new_timeline[0].details["previous"] == first.opened[0]
    assert get_incident(platform, first.opened[0])[0].state == "Resolved"
    # the old one cannot be reopened while the new one is open for the same alert
    with pytest.raises(InvalidInputError, match=f"incident {after.opened[0]} is open for"):
        lifecycle.reopen(platform, sre, first.opened[0], "came back")
    lifecycle.cancel(platform, sre, after.opened[0], "duplicate")
    assert lifecycle.reopen(platform, sre, first.opened[0], "came back").state == "In Progress"


def test_each_allowed_transition_moves_and_every_other_is_refused(
    platform: Platform, sre: Actor
) -> None:
    functions = {
        "ack": lifecycle.acknowledge,
        "hold": lifecycle.hold,
        "resume": lifecycle.resume,
        "resolve": lifecycle.resolve,
        "close": lifecycle.close,
        "cancel": lifecycle.cancel,
        "reopen": lifecycle.reopen,
    }
    # a path to each state from New
    paths = {
        "New": [],
        "In Progress": ["ack"],
        "On Hold": ["hold"],
        "Resolved": ["resolve"],
        "Closed": ["resolve", "close"],
        "Canceled": ["cancel"],
    }
    for index, start in enumerate(STATES):
        for verb, moves in TRANSITIONS.items():
            number = _open(platform, sre, _alert(f"A{index}{verb}"))
            for step in paths[start]:
                functions[step](platform, sre, number)
            assert get_incident(platform, number)[0].state == start
            if start in moves:
                assert functions[verb](platform, sre, number).state == moves[start]
            else:
                with pytest.raises(InvalidInputError, match=f"is {start}: it cannot {verb}"):
                    functions[verb](platform, sre, number)
                assert get_incident(platform, number)[0].state == start
            if get_incident(platform, number)[0].state in ("New", "In Progress", "On Hold"):
                lifecycle.cancel(platform, sre, number)  # frees the fingerprint


def test_a_viewer_cannot_ack_and_the_refusal_is_audited(platform: Platform, sre: Actor) -> None:
    number = _open(platform, sre)
    viewer = person(platform, "vic", ["viewer"])
    with pytest.raises(PermissionDeniedError):
        lifecycle.acknowledge(platform, viewer, number)
    with pytest.raises(PermissionDeniedError):
        ingest_alerts(platform, viewer, [_alert("Other")])
    assert get_incident(platform, number)[0].state == "New"
    assert _audit(platform, f"incident:{number}")[-1] == ("incident.ack", "vic", "denied")
    # a viewer reads them
    assert [i.number for i in list_incidents(platform)] == [number]


def test_every_change_is_audited_and_on_the_timeline(platform: Platform, sre: Actor) -> None:
    number = _open(platform, sre)
    lifecycle.acknowledge(platform, sre, number)
    lifecycle.assign(platform, sre, number, "ravi")
    lifecycle.add_note(platform, sre, number, "rolled back to fraud:3")
    lifecycle.record_event(platform, sre, number, "rollback", {"to": "fraud:3"})
    lifecycle.hold(platform, sre, number, "waiting for labels")
    lifecycle.resume(platform, sre, number)
    lifecycle.resolve(platform, sre, number, "rollback held")
    lifecycle.close(platform, sre, number)
    verbs = ["ack", "assign", "note", "record", "hold", "resume", "resolve", "close"]
    assert _audit(platform, f"incident:{number}") == [
        (f"incident.{v}", "sam", "allowed") for v in verbs
    ]
    incident, timeline = get_incident(platform, number)
    assert [e.kind for e in timeline] == [
        "opened", "alert", "ack", "assign", "note", "rollback", "hold", "resume", "resolve",
        "close",
    ]  # fmt: skip
    assert incident.assigned_to == "ravi" and incident.state == "Closed"
    assert timeline[4].details == {"text": "rolled back to fraud:3"}
    with pytest.raises(InvalidInputError, match="cannot be assigned"):
        lifecycle.assign(platform, sre, number, "ravi")
    with pytest.raises(InvalidInputError, match="timeline kind"):
        lifecycle.record_event(platform, sre, number, "party")


def test_another_project_s_incident_reads_as_missing(platform: Platform, sre: Actor) -> None:
    from ghaf.projects import create_project

    number = _open(platform, sre)
    create_project(platform, platform.admin(), "retail")
    with pytest.raises(NotFoundError, match="does not exist in project 'retail'"):
        lifecycle.acknowledge(platform.in_project("retail"), platform.admin(), number)
    with pytest.raises(InvalidInputError, match="incident number 'INC1' is invalid"):
        get_incident(platform, "INC1")


def test_mtta_and_mttr_per_priority_from_recorded_times(platform: Platform, sre: Actor) -> None:
    # P1: acked after 2 and 4 minutes, resolved after 30 and 50; P3: acked after 10, open.
    cases = [((1, 1), 2, 30), ((1, 1), 4, 50), ((2, 2), 10, None), ((3, 3), None, None)]
    for index, ((impact, urgency), ack, fix) in enumerate(cases):
        opened = T0 + timedelta(hours=index)
        number = _open(platform, sre, _alert(f"A{index}", impact=impact, urgency=urgency), opened)
        if ack is not None:
            lifecycle.acknowledge(platform, sre, number, at=opened + timedelta(minutes=ack))
        if fix is not None:
            lifecycle.resolve(platform, sre, number, at=opened + timedelta(minutes=fix))
    metrics = incident_metrics(list_incidents(platform))
    assert metrics == {
        "P1": {"count": 2, "mtta_s": 180.0, "mttr_s": 2400.0},
        "P3": {"count": 1, "mtta_s": 600.0, "mttr_s": None},
        "P5": {"count": 1, "mtta_s": None, "mttr_s": None},
    }


def test_an_incident_links_the_datasets_and_model_behind_its_deployment(
    platform: Platform, sre: Actor, tmp_path: Path
) -> None:
    import numpy as np
    import pyarrow as pa
    from sklearn.linear_model import LogisticRegression

    from ghaf.data import write_dataset
    from ghaf.models import save_model
    from ghaf.registry import register_model

    admin = platform.admin()
    data = write_dataset(platform, admin, "transactions", pa.table({"a": [1.0, 2.0]}), source="t")
    x = np.arange(20, dtype=float).reshape(10, 2)
    save_model(LogisticRegression().fit(x, np.arange(10) % 2), tmp_path / "m")
    version = register_model(platform, admin, "fraud", tmp_path / "m", lineage=[data.node])
    alert = Alert("Drift", {"deployment": "fraud"}, model_version=version.ref)
    incident, _ = get_incident(platform, _open(platform, sre, alert))
    assert incident.model_version == version.ref
    assert incident.links["datasets"] == [data.node]
    assert incident.links["feature_views"] == []
