"""SLO verdicts as alerts: one fingerprint per SLO and window pair, so repeats dedupe."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ghaf.alerts import Alert
from ghaf.incidents import IngestResult, ingest_alerts
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.slo.base import SLO, duration
from ghaf.slo.engine import EventSeries, Verdict, status
from ghaf.slo.prometheus import ALERT, alert_annotations
from ghaf.slo.store import get_slo
from ghaf.spine import current_operation, governed

SEVERITY = {"page": "critical", "ticket": "warning"}
"""Ghaf's alert severity of each SLO action (a page wakes someone; a ticket waits)."""


def alerts_for(slo: SLO, verdicts: Sequence[Verdict]) -> list[Alert]:
    """The firing verdicts as alerts labelled as the exported Prometheus rules label them."""
    return [slo_alert(slo, v, "firing") for v in verdicts if v.firing]


def slo_alert(slo: SLO, verdict: Verdict, status: str) -> Alert:
    """The alert of one window pair of ``slo``: ``firing`` with the verdict's burn rates,
    or ``resolved`` (the same labels, so the same fingerprint and incident)."""
    window = next(w for w in slo.windows if w.name == verdict.window)
    labels = {
        "slo": slo.name,
        "deployment": slo.deployment,
        "long_window": verdict.window,
        "short_window": duration(window.short_s),
        "action": window.severity,
    }
    summary = alert_annotations(slo, window.factor, verdict.window)["summary"]
    if status == "firing":
        summary += (
            f": burn {verdict.burn_long:.1f}x over {verdict.window}, "
            f"{verdict.burn_short:.1f}x confirming"
        )
    return Alert(
        name=ALERT,
        labels=labels,
        severity=SEVERITY[window.severity],
        summary=summary,
        source="ghaf-slo",
        deployment=slo.deployment,
        starts_at=datetime.fromtimestamp(verdict.at, UTC),
        status=status,
    )


def fire_verdicts(
    platform: Platform, actor: Actor, slo: SLO, verdicts: Sequence[Verdict]
) -> IngestResult | None:
    """Send the firing verdicts to alerts and incidents (None when nothing fires)."""
    alerts = alerts_for(slo, verdicts)
    if not alerts:
        return None
    return ingest_alerts(platform, actor, alerts)


@governed("slo.fire", resource="slo:{name}")
def fire_slo(
    platform: Platform, actor: Actor, name: str, series: EventSeries, at: float | None = None
) -> dict[str, Any]:
    """Evaluate the SLO ``name`` of the platform's project over ``series`` at ``at`` and
    send what pages or tickets to alerts and incidents (``alert.ingest``, in this one
    audited operation). Returns :func:`~ghaf.slo.engine.status`'s document with
    ``"alerts"``: the ingest result, or None when nothing fires.

    Raises:
        NotFoundError: no SLO of that name.
        InvalidInputError: ``at`` outside the series.
    """
    slo = get_slo(platform, name)
    document = status(slo, series, at)
    verdicts = [Verdict.from_dict(v) for v in document["verdicts"]]
    fired = fire_verdicts(platform, actor, slo, verdicts)
    current_operation().details.update(
        {"at": document["at"], "firing": [v.window for v in verdicts if v.firing]}
    )
    return {**document, "alerts": fired}
