"""Alertmanager's rules over alerts: routing to receivers, grouping and inhibition."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

from ghaf.alerts.base import Alert
from ghaf.settings import AlertingSettings, InhibitRuleSettings


def matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    """Whether ``labels`` hold every pair of ``match`` (an empty match holds everything)."""
    return all(labels.get(key) == value for key, value in match.items())


def receivers_for(settings: AlertingSettings, alert: Alert) -> list[str]:
    """Every receiver of every route whose match the alert's labels hold, once each."""
    found: dict[str, None] = {}
    for route in settings.routes:
        if matches(alert.all_labels, route.match):
            found.update(dict.fromkeys(route.receivers))
    return list(found)


def group_key(settings: AlertingSettings, alert: Alert) -> str:
    """The notification group of ``alert``: its values of the ``group_by`` labels."""
    labels = alert.all_labels
    values = [[name, labels.get(name, "")] for name in settings.group_by]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


def _mutes(rule: InhibitRuleSettings, source: Mapping[str, str], target: Alert) -> bool:
    labels = target.all_labels
    if not matches(labels, rule.target_match) or not matches(source, rule.source_match):
        return False
    # A source never mutes itself (Alertmanager: an alert matching both sides is not inhibited).
    if source == labels:
        return False
    return all(source.get(name) == labels.get(name) for name in rule.equal)


def inhibited(
    rules: Sequence[InhibitRuleSettings], alert: Alert, firing: Iterable[Mapping[str, str]]
) -> bool:
    """Whether one of the ``firing`` alerts' labels mutes ``alert`` under one of ``rules``."""
    if not rules:
        return False
    sources = list(firing)
    return any(_mutes(rule, source, alert) for rule in rules for source in sources)


def levels(settings: AlertingSettings, alert: Alert) -> tuple[int, int]:
    """(impact, urgency) of ``alert``: its own, else its severity's (settings)."""
    default = settings.severity_levels.get(alert.severity, [2, 2])
    return (alert.impact or default[0], alert.urgency or default[1])


def priority(settings: AlertingSettings, impact: int, urgency: int) -> int:
    """The priority (1..5) the matrix in settings gives ``impact`` x ``urgency``."""
    return int(settings.priority_matrix[impact - 1][urgency - 1])
