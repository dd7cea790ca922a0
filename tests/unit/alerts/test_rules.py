"""The alert record and Alertmanager's rules: a stable fingerprint, parsing that names the
field at fault, routing by labels, grouping keys and inhibition."""

from __future__ import annotations

import pytest

from ghaf.alerts import Alert, fingerprint, parse_alert, parse_alertmanager
from ghaf.alerts.rules import group_key, inhibited, levels, priority, receivers_for
from ghaf.errors import InvalidInputError
from ghaf.settings import AlertingSettings, InhibitRuleSettings


def test_the_fingerprint_is_stable_over_label_order_and_tells_labels_apart() -> None:
    a = fingerprint("Down", {"deployment": "fraud", "region": "ae"})
    assert a == fingerprint("Down", {"region": "ae", "deployment": "fraud"})
    assert a != fingerprint("Down", {"deployment": "loans", "region": "ae"})
    assert a != fingerprint("Up", {"deployment": "fraud", "region": "ae"})
    assert len(a) == 16 and int(a, 16) >= 0
    assert Alert("Down", {"region": "ae", "deployment": "fraud"}).fingerprint == a


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "alert field 'name' is missing"),
        ({"name": " "}, "alert field 'name' is empty"),
        ({"name": "x", "severity": "page"}, "alert field 'severity' is 'page'"),
        ({"name": "x", "impact": 4}, "alert field 'impact' must be 1, 2 or 3"),
        ({"name": "x", "urgency": True}, "alert field 'urgency' must be 1, 2 or 3"),
        ({"name": "x", "labels": {"1a": "b"}}, "alert label name '1a' is invalid"),
        ({"name": "x", "labels": ["a"]}, "alert field 'labels' must be an object"),
        ({"name": "x", "starts_at": "yesterday"}, "'starts_at' is not an ISO 8601 time"),
        ({"name": "x", "starts_at": "2026-12-07T10:00:00"}, "'starts_at' has no time zone"),
        ({"name": "x", "colour": "red"}, "alert field 'colour' is unknown"),
        ({"name": "x", "summary": "a" * 2001}, "'summary' must be a string of at most 2000"),
        ("Down", "an alert must be a JSON object"),
    ],
)
def test_a_bad_alert_is_refused_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_alert(document)


def test_alertmanager_s_webhook_body_reads_as_alerts() -> None:
    body = {
        "version": "4",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "Down",
                    "deployment": "fraud",
                    "severity": "critical",
                    "impact": "1",
                    "urgency": "2",
                },
                "annotations": {"description": "5xx above 2%"},
                "startsAt": "2026-12-07T10:00:00Z",
                "generatorURL": "http://prometheus/graph",
            }
        ],
    }
    [alert] = parse_alertmanager(body)
    assert (alert.name, alert.severity, alert.summary) == ("Down", "critical", "5xx above 2%")
    assert dict(alert.labels) == {"deployment": "fraud"}
    assert (alert.impact, alert.urgency, alert.deployment) == (1, 2, "fraud")
    assert parse_alertmanager(body)[0].occurrence == alert.occurrence  # a re-send is one
    with pytest.raises(InvalidInputError, match=r"alerts\[0\].labels.alertname is missing"):
        parse_alertmanager({"alerts": [{"labels": {}}]})
    with pytest.raises(InvalidInputError, match=r"alerts\[0\].annotations is not an object"):
        parse_alertmanager({"alerts": [{"labels": {"alertname": "x"}, "annotations": []}]})
    with pytest.raises(InvalidInputError, match="alert field 'summary' must be a string"):
        parse_alertmanager(
            {"alerts": [{"labels": {"alertname": "x"}, "annotations": {"summary": 5}}]}
        )
    with pytest.raises(InvalidInputError, match="needs an 'alerts' list"):
        parse_alertmanager({"receiver": "ghaf"})


def test_routes_pick_receivers_by_label_and_groups_by_the_group_by_labels() -> None:
    settings = AlertingSettings.model_validate(
        {
            "receivers": {n: {"kind": "bus"} for n in ("all", "fraud", "pages")},
            "routes": [
                {"receivers": ["all"]},
                {"match": {"team": "fraud"}, "receivers": ["fraud", "all"]},
                {"match": {"severity": "critical"}, "receivers": ["pages"]},
            ],
            "group_by": ["alertname", "region"],
        }
    )
    fraud = Alert("Down", {"team": "fraud", "region": "ae"}, severity="critical")
    other = Alert("Down", {"team": "loans", "region": "ae"})
    assert receivers_for(settings, fraud) == ["all", "fraud", "pages"]
    assert receivers_for(settings, other) == ["all"]
    assert group_key(settings, fraud) == group_key(settings, other)
    assert group_key(settings, fraud) != group_key(settings, Alert("Down", {"region": "sa"}))


def test_inhibition_needs_a_matching_source_and_equal_labels() -> None:
    rules = [
        InhibitRuleSettings(
            source_match={"alertname": "NodeDown"},
            target_match={"severity": "warning"},
            equal=["node"],
        )
    ]
    source = Alert("NodeDown", {"node": "n1"}, severity="critical").all_labels
    assert inhibited(rules, Alert("Slow", {"node": "n1"}), [source])
    assert not inhibited(rules, Alert("Slow", {"node": "n2"}), [source])
    assert not inhibited(rules, Alert("Slow", {"node": "n1"}, severity="critical"), [source])
    assert not inhibited(rules, Alert("Slow", {"node": "n1"}), [])
    assert not inhibited([], Alert("Slow", {"node": "n1"}), [source])


def test_priority_and_levels_follow_the_settings() -> None:
    settings = AlertingSettings()
    expected = {
        (1, 1): 1,
        (1, 2): 2,
        (1, 3): 3,
        (2, 1): 2,
        (2, 2): 3,
        (2, 3): 4,
        (3, 1): 3,
        (3, 2): 4,
        (3, 3): 5,
    }
    assert {cell: priority(settings, *cell) for cell in expected} == expected
    assert levels(settings, Alert("x", severity="critical")) == (1, 1)
    assert levels(settings, Alert("x", severity="info", urgency=1)) == (3, 1)


def test_the_alerts_and_incidents_packages_export_a_pinned_handful() -> None:
    import ghaf.alerts
    import ghaf.incidents

    assert ghaf.alerts.__all__ == [
        "Alert",
        "DeliveryReport",
        "deliver_outbox",
        "fingerprint",
        "parse_alert",
        "parse_alertmanager",
    ]
    assert ghaf.incidents.__all__ == [
        "Incident",
        "IngestResult",
        "acknowledge",
        "get_incident",
        "incident_metrics",
        "ingest_alerts",
        "list_incidents",
        "resolve",
        "resolve_alert",
    ]
    for package in (ghaf.alerts, ghaf.incidents):
        assert all(getattr(package, name) is not None for name in package.__all__)
