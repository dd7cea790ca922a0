"""Alerts: the record and its fingerprint, Alertmanager's rules, and the delivery outbox."""

from ghaf.alerts.base import Alert, fingerprint, parse_alert, parse_alertmanager
from ghaf.alerts.outbox import DeliveryReport, deliver_outbox

__all__ = [
    "Alert",
    "DeliveryReport",
    "deliver_outbox",
    "fingerprint",
    "parse_alert",
    "parse_alertmanager",
]
