"""Reads of stored outcomes for monitors: the labels of given predictions, and a
watermark that says cheaply whether any label came in since a monitor last looked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select

from ghaf.platform import Platform
from ghaf.serving.outcomes import DEFAULT_METRIC
from ghaf.serving.tables import OutcomeRow

CHUNK = 2000
"""Request ids per query (well under every backend's limit on bound parameters)."""


def outcome_watermark(platform: Platform) -> int:
    """The id of the last outcome stored in the home (0: none); it only grows, so an
    unchanged watermark means no label arrived anywhere (one index lookup)."""
    with platform.read_session() as session:
        return int(session.execute(select(func.max(OutcomeRow.id))).scalar_one_or_none() or 0)


def outcomes_of_requests(
    platform: Platform, model: str, request_ids: Sequence[str], *, metric: str = DEFAULT_METRIC
) -> dict[str, float]:
    """The outcome reported for each of ``request_ids`` of the served ``model`` in
    ``platform``'s project (the latest report where one was reported twice)."""
    unique = list(dict.fromkeys(request_ids))
    found: dict[str, float] = {}
    with platform.read_session() as session:
        for start in range(0, len(unique), CHUNK):
            chunk = unique[start : start + CHUNK]
            rows = session.execute(
                select(OutcomeRow.request_id, OutcomeRow.value)
                .where(OutcomeRow.model == model, OutcomeRow.request_id.in_(chunk))
                .where(OutcomeRow.project == platform.default_project)
                .where(OutcomeRow.metric == metric)
                .order_by(OutcomeRow.id)
            ).all()
            found.update((str(request_id), float(value)) for request_id, value in rows)
    return found


def labels_of(
    platform: Platform, model: str, request_ids: Sequence[str], *, metric: str = DEFAULT_METRIC
) -> np.ndarray:
    """One label per entry of ``request_ids`` (NaN where none was reported yet)."""
    found = outcomes_of_requests(platform, model, request_ids, metric=metric)
    return np.fromiter((found.get(r, np.nan) for r in request_ids), np.float64, len(request_ids))
