"""Scheduled SLOs: the live loop reads each SLO's counters from its deployment's
``ghaf serve`` processes, keeps the samples in the metadata database, evaluates the
burn-rate windows over them and fires (and resolves) the alerts, without anyone asking.

What Prometheus and its rules do for a team that runs them, for one that does not: the
samples are the same counters the exported rules read (``ghaf_requests_total``,
``ghaf_request_seconds``), so the verdicts agree. Quality SLOs count labelled outcomes,
which no server exposes: they stay evaluated on demand (``ghaf slo status --events``).

    schedule_slo(platform, actor, "fraud-availability", ["http://10.0.0.5:8080"], every="1m")
    passes = run_due_slos(platform, actor)        # what the live loop calls each pass
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select

from ghaf.alerts import Alert
from ghaf.errors import GhafError, InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.scrape import ScrapeError, check_allowed, fetch_metrics
from ghaf.slo.base import SLO
from ghaf.slo.engine import EventSeries, Verdict, status
from ghaf.slo.sources import counts_from_metrics, from_target_samples
from ghaf.slo.store import get_slo
from ghaf.slo.tables import SLOSampleRow, SLOScrapeRow
from ghaf.spine import current_operation, current_session, governed

MIN_EVERY_S = 10
MAX_EVERY_S = 3600
MAX_TARGETS = 16
STEP_S = 60
"""Bucket width of the evaluated series: every window of the SRE workbook is a whole
number of minutes."""
_log = get_logger(__name__)

__all__ = [
    "SLOPass",
    "SLOScrape",
    "list_slo_scrapes",
    "run_due_slos",
    "schedule_slo",
    "unschedule_slo",
]


@dataclass(frozen=True)
class SLOScrape:
    """Where and how often a scheduled SLO reads its counters."""

    name: str
    targets: tuple[str, ...]
    every_s: int
    next_due: datetime
    last_error: str
    firing: tuple[str, ...]
    created_by: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "targets": list(self.targets),
            "every_s": self.every_s,
            "next_due": self.next_due.isoformat(),
            "last_error": self.last_error,
            "firing": list(self.firing),
            "created_by": self.created_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class SLOPass:
    """What one scheduled evaluation of one SLO did."""

    name: str
    at: float
    read: int
    errors: tuple[str, ...] = ()
    verdicts: tuple[dict[str, Any], ...] = ()
    firing: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    opened: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "at": self.at,
            "read": self.read,
            "errors": list(self.errors),
            "verdicts": list(self.verdicts),
            "firing": list(self.firing),
            "resolved": list(self.resolved),
            "opened": list(self.opened),
            "note": self.note,
        }


def _record(row: SLOScrapeRow) -> SLOScrape:
    return SLOScrape(
        row.name,
        tuple(json.loads(row.targets)),
        row.every_s,
        row.next_due,
        row.last_error,
        tuple(json.loads(row.firing or "[]")),
        row.created_by,
        row.updated_at,
    )


def check_target(target: str) -> str:
    """A ``ghaf serve`` base URL: http(s), a host, no credential, query or fragment.

    Raises:
        InvalidInputError: naming the target and the form wanted.
    """
    parts = urlsplit(target)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or len(target) > 512
    ):
        raise InvalidInputError(
            f"SLO field 'targets' holds {target[:100]!r}",
            hint="give each ghaf serve's base URL, e.g. http://10.0.0.5:8080 (served with "
            "--metrics-public), without a credential, query or fragment",
        )
    return target.rstrip("/")


@governed("slo.schedule", resource="slo:{name}")
def schedule_slo(
    platform: Platform, actor: Actor, name: str, targets: Sequence[str], every: int = 60
) -> SLOScrape:
    """Evaluate the SLO ``name`` every ``every`` seconds from the counters at ``targets``
    (each a ``ghaf serve`` of its deployment); replaces an earlier schedule of it.

    Raises:
        NotFoundError: no SLO of that name.
        InvalidInputError: a quality SLO, a target that is no base URL, or ``every``
            out of 10 s to 1 h.
    """
    slo = get_slo(platform, name)
    if slo.sli == "quality":
        raise InvalidInputError(
            f"SLO {name!r} measures quality, which a model server's metrics do not count",
            hint="evaluate it on demand: ghaf slo status NAME --events FILE",
        )
    if not 1 <= len(targets) <= MAX_TARGETS:
        raise InvalidInputError(
            f"SLO field 'targets' has {len(targets)} entries",
            hint=f"give 1 to {MAX_TARGETS} ghaf serve base URLs (--metrics URL)",
        )
    if not MIN_EVERY_S <= every <= MAX_EVERY_S:
        raise InvalidInputError(
            f"SLO field 'every' is {every} s", hint=f"use {MIN_EVERY_S} s to {MAX_EVERY_S} s"
        )
    clean = sorted({check_target(t) for t in targets})
    for target in clean:
        check_allowed(target, platform.settings.server.fetch_allow)
    session = current_session()
    project = platform.default_project
    row = session.execute(
        select(SLOScrapeRow).where(SLOScrapeRow.project == project, SLOScrapeRow.name == name)
    ).scalar_one_or_none()
    now = utcnow()
    if row is None:
        row = SLOScrapeRow(project=project, name=name, last_error="", firing="[]")
        session.add(row)
    row.targets = json.dumps(clean)
    row.every_s = every
    row.next_due = now
    row.created_by = actor.name
    row.updated_at = now
    session.flush()
    current_operation().details.update({"targets": clean, "every_s": every})
    return _record(row)


@governed("slo.unschedule", resource="slo:{name}")
def unschedule_slo(platform: Platform, actor: Actor, name: str) -> SLOScrape:
    """Stop evaluating ``name`` on a schedule and drop its samples; returns what it was.

    Raises:
        NotFoundError: ``name`` is not scheduled.
    """
    session = current_session()
    project = platform.default_project
    row = session.execute(
        select(SLOScrapeRow).where(SLOScrapeRow.project == project, SLOScrapeRow.name == name)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"SLO {name!r} is not scheduled", hint="see ghaf slo list (SCHEDULE column)"
        )
    before = _record(row)
    session.delete(row)
    session.execute(
        delete(SLOSampleRow).where(SLOSampleRow.project == project, SLOSampleRow.name == name)
    )
    session.flush()
    return before


def list_slo_scrapes(platform: Platform) -> list[SLOScrape]:
    """The scheduled SLOs of the platform's project, by name."""
    query = (
        select(SLOScrapeRow)
        .where(SLOScrapeRow.project == platform.default_project)
        .order_by(SLOScrapeRow.name)
    )
    with platform.read_session() as session:
        return [_record(r) for r in session.execute(query).scalars()]


@governed("slo.scrape", resource="slo:{name}")
def _store_pass(
    platform: Platform,
    actor: Actor,
    name: str,
    samples: Sequence[tuple[str, float, float, float]],
    errors: Sequence[str],
    at: datetime,
    keep_s: float,
    firing: Sequence[str],
) -> None:
    """Keep one pass's samples, set the schedule's next due time, last error and the
    windows firing, and drop samples older than the SLO's window."""
    session = current_session()
    project = platform.default_project
    row = session.execute(
        select(SLOScrapeRow).where(SLOScrapeRow.project == project, SLOScrapeRow.name == name)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"SLO {name!r} is not scheduled", hint="ghaf slo schedule NAME")
    for target, ts, good, total in samples:
        session.add(
            SLOSampleRow(project=project, name=name, target=target, ts=ts, good=good, total=total)
        )
    session.execute(
        delete(SLOSampleRow).where(
            SLOSampleRow.project == project,
            SLOSampleRow.name == name,
            SLOSampleRow.ts < at.timestamp() - keep_s,
        )
    )
    row.next_due = at + timedelta(seconds=row.every_s)
    row.last_error = "; ".join(errors)
    row.firing = json.dumps(sorted(firing))
    session.flush()
    current_operation().details.update(
        {"read": len(samples), "errors": list(errors), "firing": sorted(firing)}
    )


def _samples(
    platform: Platform, name: str, since: float
) -> dict[str, list[tuple[float, float, float]]]:
    query = (
        select(SLOSampleRow.target, SLOSampleRow.ts, SLOSampleRow.good, SLOSampleRow.total)
        .where(
            SLOSampleRow.project == platform.default_project,
            SLOSampleRow.name == name,
            SLOSampleRow.ts >= since,
        )
        .order_by(SLOSampleRow.ts)
    )
    found: dict[str, list[tuple[float, float, float]]] = {}
    with platform.read_session() as session:
        for target, ts, good, total in session.execute(query):
            found.setdefault(target, []).append((ts, good, total))
    return found


def _resolved_alert(slo: SLO, window: str, at: float) -> Alert:
    from ghaf.slo.alerting import slo_alert

    return slo_alert(slo, Verdict(slo.name, window, "", False, 0.0, 0.0, 0, at), "resolved")


def evaluate_scheduled(
    platform: Platform,
    actor: Actor,
    scrape: SLOScrape,
    now: datetime,
    fetch: Callable[[str], str] = fetch_metrics,
) -> SLOPass:
    """One pass of one scheduled SLO at ``now``: read every target, keep the samples,
    evaluate the windows over what is kept, fire what newly fires or still fires, and
    resolve what stopped."""
    slo = get_slo(platform, scrape.name)
    at = now.timestamp()
    samples, errors = [], []
    for target in scrape.targets:
        try:
            check_allowed(target, platform.settings.server.fetch_allow)  # as it is now
            good, total = counts_from_metrics(fetch(target), slo)
        except (ScrapeError, InvalidInputError, PolicyViolationError) as exc:
            errors.append(f"{target}: {exc}")
            continue
        samples.append((target, at, good, total))
    longest = max(w.long_s for w in slo.windows)
    keep_s = float(max(longest, slo.window_days * 86_400) + STEP_S)
    kept = _samples(platform, scrape.name, at - longest - STEP_S)
    for target, ts, good, total in samples:
        kept.setdefault(target, []).append((ts, good, total))
    try:
        series: EventSeries | None = from_target_samples(kept, step=STEP_S)
    except InvalidInputError:
        series = None  # the first read of every target: a baseline, nothing to judge yet
    document = status(slo, series) if series is not None else {"verdicts": []}
    firing = tuple(v["window"] for v in document["verdicts"] if v["firing"])
    _store_pass(platform, actor, scrape.name, samples, errors, now, keep_s, firing)
    if series is None:
        return SLOPass(scrape.name, at, len(samples), tuple(errors), note="waiting for samples")
    return _alert(platform, actor, slo, scrape, series, document, len(samples), errors, at)


def _alert(
    platform: Platform,
    actor: Actor,
    slo: SLO,
    scrape: SLOScrape,
    series: EventSeries,
    document: dict[str, Any],
    read: int,
    errors: Sequence[str],
    at: float,
) -> SLOPass:
    """Fire what fires (every pass it does: the incident counts them) and resolve what
    stopped since the last pass."""
    from ghaf.incidents import ingest_alerts
    from ghaf.slo.alerting import fire_slo

    firing = tuple(v["window"] for v in document["verdicts"] if v["firing"])
    opened: tuple[str, ...] = ()
    if firing:
        fired = fire_slo(platform, actor, slo.name, series)["alerts"]
        opened = tuple(fired.opened) if fired is not None else ()
    stopped = tuple(w for w in scrape.firing if w not in firing)
    if stopped:
        ingest_alerts(platform, actor, [_resolved_alert(slo, w, at) for w in stopped])
    return SLOPass(
        slo.name, at, read, tuple(errors), tuple(document["verdicts"]), firing, stopped, opened
    )


def run_due_slos(
    platform: Platform,
    actor: Actor,
    *,
    now: datetime | None = None,
    fetch: Callable[[str], str] = fetch_metrics,
) -> list[SLOPass]:
    """Evaluate every scheduled SLO of the platform's project that is due at ``now``
    (default: the current time). One SLO that fails is logged and recorded; the others
    still run."""
    moment = now or utcnow()
    passes = []
    for scrape in list_slo_scrapes(platform):
        if scrape.next_due > moment:
            continue
        try:
            passes.append(evaluate_scheduled(platform, actor, scrape, moment, fetch))
        except GhafError as exc:
            _log.warning("scheduled SLO not evaluated", slo=scrape.name, error=exc.headline)
            passes.append(SLOPass(scrape.name, moment.timestamp(), 0, (exc.headline,)))
    return passes
