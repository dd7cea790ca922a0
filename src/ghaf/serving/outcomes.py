"""Outcomes (labels) of served predictions: reported late, stored durably, joined by id.

A client reports what happened after a prediction (a conversion, a chargeback, the true
label) with the prediction's request id or the experiment unit's id; a label that
arrives days later joins to its prediction all the same, since the join is by id, not by
time. Each report (one or many outcomes) is one governed ``model.feedback`` operation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import insert, select

from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.tables import OutcomeRow
from ghaf.spine import current_operation, current_session, governed

DEFAULT_METRIC = "outcome"
MAX_OUTCOMES = 100_000
"""The most outcomes one report may carry (a bigger import is split by the caller)."""

OUTCOME_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("unit", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("ts", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Outcome:
    """One label: for a request id or a unit id (at least one), a number, when it happened."""

    value: float
    request_id: str | None = None
    unit: str | None = None
    metric: str = DEFAULT_METRIC
    ts: datetime | None = None


def parse_outcome(doc: Mapping[str, Any], index: int = 0) -> Outcome:
    """An :class:`Outcome` from a JSON object (``request_id``/``unit``, ``outcome``,
    ``timestamp`` as ISO 8601 or epoch seconds, optional ``metric``).

    Raises:
        InvalidInputError: naming the field (and the item, in a list) and the fix.
    """
    where = f"outcomes[{index}]" if index else "the outcome"
    if not isinstance(doc, Mapping):
        raise InvalidInputError(
            f"{where} is not an object", hint='{"request_id": "...", "outcome": 1}'
        )
    request_id, unit = doc.get("request_id"), doc.get("unit")
    if request_id is None and unit is None:
        raise InvalidInputError(
            f"{where} names neither request_id nor unit",
            hint="give the prediction's request id or the experiment unit's id",
        )
    for field, text in (("request_id", request_id), ("unit", unit)):
        if text is not None and (not isinstance(text, str) or not text or len(text) > 256):
            raise InvalidInputError(
                f"{where}: {field} must be a non-empty string of at most 256 characters",
                hint=f'e.g. "{field}": "abc-123"',
            )
    value = doc.get("outcome")
    if isinstance(value, bool):
        value = float(value)
    if not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise InvalidInputError(
            f"{where}: outcome must be a finite number, not {value!r}",
            hint='e.g. "outcome": 1 (converted) or 0',
        )
    metric = doc.get("metric", DEFAULT_METRIC)
    if not isinstance(metric, str) or not metric or len(metric) > 128:
        raise InvalidInputError(f"{where}: metric must be a short name", hint='e.g. "conversion"')
    return Outcome(float(value), request_id, unit, metric, _timestamp(doc.get("timestamp"), where))


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise InvalidInputError(
        f"{where}: timestamp {value!r} is neither ISO 8601 nor epoch seconds",
        hint='e.g. "timestamp": "2026-12-07T10:00:00Z"',
    )


@governed("model.feedback", resource="model:{model}")
def record_outcomes(
    platform: Platform,
    actor: Actor,
    model: str,
    outcomes: Sequence[Outcome],
    *,
    source: str = "api",
) -> int:
    """Store ``outcomes`` reported for the served model ``model``; returns how many.

    Raises:
        InvalidInputError: none, or more than :data:`MAX_OUTCOMES`, in one report.
    """
    if not outcomes or len(outcomes) > MAX_OUTCOMES:
        raise InvalidInputError(
            f"a report carries 1 to {MAX_OUTCOMES:,} outcomes, not {len(outcomes):,}",
            hint="split a large import into several reports",
        )
    now = utcnow()
    rows = [
        {
            "model": model,
            "project": platform.default_project,
            "request_id": o.request_id,
            "unit": o.unit,
            "metric": o.metric,
            "value": o.value,
            "ts": o.ts or now,
            "received_at": now,
            "source": source,
            "reported_by": actor.name,
        }
        for o in outcomes
    ]
    current_session().execute(insert(OutcomeRow), rows)
    current_operation().details.update({"outcomes": len(rows), "source": source})
    return len(rows)


def read_outcomes(platform: Platform, model: str, metric: str | None = None) -> pa.Table:
    """Every outcome stored for ``model`` in ``platform``'s project (of ``metric``), as a
    table of :data:`OUTCOME_SCHEMA`, oldest first."""
    query = select(
        OutcomeRow.request_id, OutcomeRow.unit, OutcomeRow.metric, OutcomeRow.value, OutcomeRow.ts
    ).where(OutcomeRow.model == model, OutcomeRow.project == platform.default_project)
    if metric is not None:
        query = query.where(OutcomeRow.metric == metric)
    with platform.read_session() as session:
        rows = session.execute(query.order_by(OutcomeRow.id)).all()
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * len(OUTCOME_SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(list(c), f.type) for c, f in zip(columns, OUTCOME_SCHEMA, strict=True)],
        schema=OUTCOME_SCHEMA,
    )
