"""How each receiver kind is told: generic webhook, SMTP e-mail, PagerDuty Events v2,
ServiceNow's incident JSON, and the event bus. Each sends one notification or raises."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any

import httpx

from ghaf.events.base import EventBus
from ghaf.settings import ReceiverSettings

PD_SEVERITY = {"critical": "critical", "high": "error", "warning": "warning"}
"""Ghaf severity -> PagerDuty's (critical, error, warning, info)."""

SERVICENOW_STATES = {
    "New": 1,
    "In Progress": 2,
    "On Hold": 3,
    "Resolved": 6,
    "Closed": 7,
    "Canceled": 8,
}
"""ServiceNow's incident state codes."""


def _post(receiver: ReceiverSettings, body: Mapping[str, Any], key: str) -> None:
    if not receiver.url:
        raise ValueError("the receiver has no url")
    response = httpx.post(
        receiver.url,
        json=body,
        headers={"Idempotency-Key": key, "User-Agent": "ghaf-alerts"},
        timeout=receiver.timeout_s,
    )
    response.raise_for_status()


def send_webhook(
    receiver: ReceiverSettings,
    event: str,
    items: Sequence[Mapping[str, Any]],
    key: str,
    group_key: str,
) -> None:
    """POST ``{"status", "groupKey", "alerts": [...]}`` (Alertmanager's webhook, simplified)."""
    status = "resolved" if event == "alert.resolved" else "firing"
    _post(
        receiver,
        {"version": "ghaf/1", "status": status, "groupKey": group_key, "alerts": list(items)},
        key,
    )


def send_email(
    receiver: ReceiverSettings, event: str, items: Sequence[Mapping[str, Any]], key: str
) -> None:
    """One e-mail per notification, through SMTP (STARTTLS and login when configured)."""
    if not receiver.mail_to:
        raise ValueError("the e-mail receiver has no mail_to")
    status = "RESOLVED" if event == "alert.resolved" else "FIRING"
    names = sorted({str(item["name"]) for item in items})
    message = EmailMessage()
    message["Subject"] = f"[{status}:{len(items)}] {', '.join(names)}"
    message["From"] = receiver.mail_from
    message["To"] = ", ".join(receiver.mail_to)
    message["Message-ID"] = f"<{key}@ghaf>"
    lines = [
        f"{item['name']} ({item['severity']}) {item.get('summary', '')}\n"
        f"  labels: {item.get('labels', {})}\n  fingerprint: {item['fingerprint']}"
        for item in items
    ]
    message.set_content("\n".join(lines) + "\n")
    with smtplib.SMTP(receiver.smtp_host, receiver.smtp_port, timeout=receiver.timeout_s) as smtp:
        if receiver.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if receiver.smtp_user and receiver.smtp_password:
            smtp.login(receiver.smtp_user, receiver.smtp_password.get_secret_value())
        smtp.send_message(message)


def pagerduty_body(
    receiver: ReceiverSettings, action: str, incident: Mapping[str, Any]
) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: trigger carries a payload, ack/resolve only the key."""
    body: dict[str, Any] = {
        "routing_key": receiver.routing_key.get_secret_value() if receiver.routing_key else "",
        "event_action": action,
        "dedup_key": incident["fingerprint"] or incident["number"],
    }
    if action == "trigger":
        body["payload"] = {
            "summary": f"{incident['number']}: {incident['title']}"[:1024],
            "severity": PD_SEVERITY.get(str(incident.get("severity")), "info"),
            "source": incident.get("deployment") or incident.get("source") or "ghaf",
            "custom_details": {
                "priority": f"P{incident['priority']}",
                "model_version": incident.get("model_version"),
            },
        }
    return body


def servicenow_body(incident: Mapping[str, Any]) -> dict[str, Any]:
    """The incident in ServiceNow's shape (the Table API's incident fields)."""
    return {
        "number": incident["number"],
        "short_description": str(incident["title"])[:160],
        "description": incident.get("description", ""),
        "impact": str(incident["impact"]),
        "urgency": str(incident["urgency"]),
        "priority": str(incident["priority"]),
        "state": str(SERVICENOW_STATES[str(incident["state"])]),
        "assigned_to": incident.get("assigned_to") or "",
        "correlation_id": incident.get("fingerprint") or "",
        "cmdb_ci": incident.get("deployment") or "",
        "u_model_version": incident.get("model_version") or "",
        "opened_at": incident["opened_at"],
        "resolved_at": incident.get("resolved_at") or "",
        "closed_at": incident.get("closed_at") or "",
    }


Sender = Callable[[ReceiverSettings, str, Sequence[Mapping[str, Any]], str, str], None]


def send(
    receiver: ReceiverSettings,
    event: str,
    items: Sequence[Mapping[str, Any]],
    key: str,
    group_key: str,
    bus: Callable[[], EventBus],
) -> None:
    """Send one notification of ``event`` with ``items`` to ``receiver``.

    Raises:
        Exception: whatever the transport raised; the outbox retries it.
    """
    if receiver.kind == "webhook":
        send_webhook(receiver, event, items, key, group_key)
    elif receiver.kind == "email":
        send_email(receiver, event, items, key)
    elif receiver.kind == "bus":
        for index, item in enumerate(items):
            bus().publish(event, item, msg_id=f"{key}-{index}")
    elif receiver.kind == "pagerduty":
        for item in items:
            _post(receiver, pagerduty_body(receiver, event.rpartition(".")[2], item), key)
    else:
        for item in items:
            _post(receiver, servicenow_body(item), key)
