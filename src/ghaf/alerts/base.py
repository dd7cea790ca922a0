"""The alert record: what fired, where, how bad, and its fingerprint (as Alertmanager's)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow

SEVERITIES = ("critical", "high", "warning", "low", "info")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_LABELS = 64
MAX_TEXT = 2000


def fingerprint(name: str, labels: Mapping[str, str]) -> str:
    """A stable hash of the alert's name and its sorted labels (16 hex digits).

    The same alert sent twice, by any door, in any label order, has one fingerprint; it
    is the de-duplication key of incidents and PagerDuty's ``dedup_key``.
    """
    body = json.dumps([name, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Alert:
    """One alert occurrence.

    ``id`` names this occurrence: a sender re-sending what was not acknowledged sends
    the same id, and it is counted once. ``impact``/``urgency`` (1 high .. 3 low) set the
    incident's priority; when absent they come from ``severity`` (settings).
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    severity: str = "warning"
    summary: str = ""
    source: str = "ghaf"
    deployment: str | None = None
    model_version: str | None = None
    starts_at: datetime = field(default_factory=utcnow)
    status: str = "firing"
    impact: int | None = None
    urgency: int | None = None
    id: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.name, self.labels)

    @property
    def all_labels(self) -> dict[str, str]:
        """The labels with ``alertname`` and ``severity`` added, as routes match them."""
        return {**self.labels, "alertname": self.name, "severity": self.severity}

    @property
    def occurrence(self) -> str:
        """This occurrence's id: the sender's, or one derived from what it says."""
        if self.id:
            return self.id
        body = f"{self.fingerprint}|{self.starts_at.isoformat()}|{self.status}"
        return hashlib.sha256(body.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "labels": dict(self.labels),
            "severity": self.severity,
            "summary": self.summary,
            "source": self.source,
            "deployment": self.deployment,
            "model_version": self.model_version,
            "starts_at": self.starts_at.isoformat(),
            "status": self.status,
            "impact": self.impact,
            "urgency": self.urgency,
            "id": self.occurrence,
            "fingerprint": self.fingerprint,
        }


def _text(value: Any, what: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidInputError(
            f"alert field {what!r} must be a string of at most {limit} characters",
            hint=f"send {what} as text",
        )
    return value


def _level(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3:
        raise InvalidInputError(
            f"alert field {what!r} must be 1, 2 or 3", hint=f"{what}: 1 (high) .. 3 (low)"
        )
    return value


def _time(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(_text(value, what, limit=64).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(
                f"alert field {what!r} is not an ISO 8601 time",
                hint=f"e.g. {what}: 2026-12-07T10:00:00Z",
            ) from None
    if moment.tzinfo is None:
        raise InvalidInputError(
            f"alert field {what!r} has no time zone", hint="end it with Z or +00:00"
        )
    return moment.astimezone(UTC)


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or len(value) > MAX_LABELS:
        raise InvalidInputError(
            "alert field 'labels' must be an object of at most 64 labels",
            hint='e.g. labels: {"deployment": "fraud"}',
        )
    labels = {}
    for key, text in value.items():
        if not isinstance(key, str) or not _LABEL.match(key):
            raise InvalidInputError(
                f"alert label name {key!r} is invalid",
                hint="label names are letters, digits and '_', not starting with a digit",
            )
        labels[key] = _text(text, f"labels.{key}", limit=512)
    return labels


def parse_alert(document: Any) -> Alert:
    """An :class:`Alert` from Ghaf's JSON shape (see :meth:`Alert.to_dict`).

    Raises:
        InvalidInputError: naming the field that is missing or wrong.
    """
    if not isinstance(document, Mapping):
        raise InvalidInputError("an alert must be a JSON object", hint='{"name": "...", ...}')
    known = {
        "name", "labels", "severity", "summary", "source", "deployment", "model_version",
        "starts_at", "status", "impact", "urgency", "id", "fingerprint",
    }  # fmt: skip
    unknown = sorted(set(document) - known)
    if unknown:
        raise InvalidInputError(
            f"alert field {unknown[0]!r} is unknown",
            hint=f"known fields: {', '.join(sorted(known))}",
        )
    if "name" not in document:
        raise InvalidInputError("alert field 'name' is missing", hint='e.g. "name": "DriftHigh"')
    name = _text(document["name"], "name", limit=256)
    if not name.strip():
        raise InvalidInputError("alert field 'name' is empty", hint='e.g. "name": "DriftHigh"')
    severity = document.get("severity", "warning")
    if severity not in SEVERITIES:
        raise InvalidInputError(
            f"alert field 'severity' is {severity!r}", hint=f"use one of {', '.join(SEVERITIES)}"
        )
    status = document.get("status", "firing")
    if status not in ("firing", "resolved"):
        raise InvalidInputError(
            f"alert field 'status' is {status!r}", hint="use firing or resolved"
        )
    optional = {
        key: _text(document[key], key, limit=300) if document.get(key) is not None else None
        for key in ("deployment", "model_version")
    }
    starts = document.get("starts_at")
    return Alert(
        name=name,
        labels=_labels(document.get("labels", {})),
        severity=severity,
        summary=_text(document.get("summary", ""), "summary"),
        source=_text(document.get("source", "ghaf"), "source", limit=256),
        deployment=optional["deployment"],
        model_version=optional["model_version"],
        starts_at=utcnow() if starts is None else _time(starts, "starts_at"),
        status=status,
        impact=_level(document.get("impact"), "impact"),
        urgency=_level(document.get("urgency"), "urgency"),
        id=_text(document.get("id", ""), "id", limit=128),
    )


def parse_alertmanager(document: Any) -> list[Alert]:
    """Alerts from an Alertmanager webhook body (``{"version": "4", "alerts": [...]}``).

    ``severity``, ``deployment``, ``model_version``, ``impact`` and ``urgency`` are read
    from labels; ``summary`` from the ``summary`` (or ``description``) annotation.

    Raises:
        InvalidInputError: naming the alert and field that is wrong.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("alerts"), list):
        raise InvalidInputError(
            "an Alertmanager body needs an 'alerts' list", hint="send Alertmanager's webhook JSON"
        )
    found = []
    for index, item in enumerate(document["alerts"]):
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"alerts[{index}] is not an object", hint="send objects")
        labels = _labels(item.get("labels", {}))
        name = labels.pop("alertname", "")
        if not name:
            raise InvalidInputError(
                f"alerts[{index}].labels.alertname is missing", hint="every alert has a name"
            )
        notes = item.get("annotations")
        notes = {} if notes is None else notes
        if not isinstance(notes, Mapping):
            raise InvalidInputError(
                f"alerts[{index}].annotations is not an object", hint="send an object"
            )
        summary = notes.get("summary") or notes.get("description") or ""
        severity = labels.pop("severity", "warning")
        levels = {k: labels.pop(k, None) for k in ("impact", "urgency")}
        starts = item.get("startsAt")
        found.append(
            parse_alert(
                {
                    "name": name,
                    "labels": labels,
                    "severity": severity if severity in SEVERITIES else "warning",
                    "summary": summary,
                    "source": _text(item.get("generatorURL") or "alertmanager", "generatorURL"),
                    "deployment": labels.get("deployment"),
                    "model_version": labels.get("model_version"),
                    "starts_at": starts,
                    "status": item.get("status", "firing"),
                    **{k: int(v) for k, v in levels.items() if v and v.isdigit()},
                    "id": _am_id(item, name, labels),
                }
            )
        )
    return found


def _am_id(item: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> str:
    """Alertmanager re-sends a still-firing alert unchanged: one occurrence per start and status."""
    body = f"{fingerprint(name, labels)}|{item.get('startsAt')}|{item.get('status')}"
    return hashlib.sha256(body.encode()).hexdigest()[:32]
