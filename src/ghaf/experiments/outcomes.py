"""Batch label import: a dataset version's rows become outcomes of a served model.

The dataset names each row's prediction by ``request_id`` or its unit by ``unit`` (one
of them at least), its ``outcome`` (a number) and, optionally, ``timestamp`` and
``metric``. The rows are stored as one governed ``model.feedback`` report per chunk.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ghaf.data import get_dataset, read_dataset
from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.outcomes import MAX_OUTCOMES, Outcome, parse_outcome, record_outcomes

COLUMNS = ("request_id", "unit", "outcome", "timestamp", "metric")


def outcomes_of(table: pa.Table, source: str) -> list[Outcome]:
    """Each row of ``table`` as an :class:`Outcome` (checked as the feedback endpoint does).

    Raises:
        InvalidInputError: no ``outcome`` column, neither id column, or a bad row (named).
    """
    names = set(table.column_names)
    if "outcome" not in names or not names & {"request_id", "unit"}:
        raise InvalidInputError(
            f"{source} has no outcome column, or neither request_id nor unit",
            hint=f"its columns are {sorted(names)}; labels need outcome and request_id or unit",
        )
    columns: dict[str, list[Any]] = {n: table.column(n).to_pylist() for n in COLUMNS if n in names}
    rows = []
    for i in range(table.num_rows):
        doc = {n: values[i] for n, values in columns.items() if values[i] is not None}
        if "timestamp" in doc and hasattr(doc["timestamp"], "isoformat"):
            doc["timestamp"] = doc["timestamp"].isoformat()
        if "request_id" in doc:
            doc["request_id"] = str(doc["request_id"])
        if "unit" in doc:
            doc["unit"] = str(doc["unit"])
        try:
            rows.append(parse_outcome(doc, i + 1))
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"{source} row {i + 1}: {exc.headline}", hint=exc.hint
            ) from None
    return rows


def import_outcomes(platform: Platform, actor: Actor, model: str, dataset: str) -> int:
    """Store the labels of dataset version ``dataset`` (``NAME:V``/``NAME@V``) as outcomes
    of the served ``model``; returns how many (one governed report per 100k rows)."""
    version = get_dataset(platform, dataset.replace("@", ":"))
    source = f"dataset:{version.name}:{version.version}"
    outcomes = outcomes_of(read_dataset(platform, f"{version.name}:{version.version}"), source)
    if not outcomes:
        raise InvalidInputError(f"{source} has no rows", hint="import a version with labels")
    stored = 0
    for start in range(0, len(outcomes), MAX_OUTCOMES):
        chunk = outcomes[start : start + MAX_OUTCOMES]
        stored += record_outcomes(platform, actor, model, chunk, source=source)
    return stored
