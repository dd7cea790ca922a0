"""``search_runs``: filter, order and page runs with one SQL query plus three small ones."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import aliased

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.tracking.base import Run
from ghaf.tracking.search import ATTRIBUTES, Field, _Parser, filter_condition
from ghaf.tracking.service import load_runs, run_query
from ghaf.tracking.tables import ExperimentRow, LatestMetricRow, RunParamRow, RunRow, RunTagRow

MAX_RESULTS = 10_000


@dataclass(frozen=True)
class RunPage:
    """One page of search results; pass ``next_page_token`` to get the next."""

    runs: list[Run]
    next_page_token: str | None


def parse_order_by(clauses: Sequence[str]) -> list[tuple[Field, bool]]:
    """Parse ``["metrics.auc desc", "attributes.start_time"]`` into (field, descending)."""
    parsed: list[tuple[Field, bool]] = []
    for clause in clauses:
        parser = _Parser(clause)
        field = parser.field()
        descending = False
        token = parser.peek()
        if token is not None:
            word = str(token.value).lower()
            if token.kind != "name" or word not in ("asc", "desc"):
                raise parser.error(f"expected asc or desc after the field, got {token.text!r}")
            descending = word == "desc"
            parser.take()
        if parser.peek() is not None:
            raise parser.error("one field per order-by clause")
        parsed.append((field, descending))
    return parsed


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            "page token is invalid", hint="pass the next_page_token of the previous page"
        ) from exc
    if offset < 0:
        raise InvalidInputError("page token is invalid", hint="pass next_page_token unchanged")
    return offset


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _ordered(query: Any, order: list[tuple[Field, bool]]) -> Any:
    clauses: list[Any] = []
    column: Any
    other: Any
    for field, descending in order:
        if field.entity == "attribute":
            column = ATTRIBUTES[field.key]
        elif field.entity == "metric":
            table = aliased(LatestMetricRow)
            query = query.outerjoin(table, (table.run_id == RunRow.id) & (table.key == field.key))
            column = {"latest": table.value, "min": table.min_value, "max": table.max_value}[
                field.aggregate
            ]
        else:
            other = aliased(RunParamRow if field.entity == "param" else RunTagRow)
            query = query.outerjoin(other, (other.run_id == RunRow.id) & (other.key == field.key))
            column = other.value
        clauses.append((column.desc() if descending else column.asc()).nulls_last())
    clauses += [RunRow.start_time.desc(), RunRow.id]
    return query.order_by(*clauses)


@functools.lru_cache(maxsize=256)
def _statement(
    filter: str,
    order_by: tuple[str, ...],
    experiments: tuple[str, ...],
    projects: tuple[str, ...] | None = None,
) -> Any:
    """The SELECT for a filter, order and experiments; built once per distinct search.

    Building SQLAlchemy expressions costs more than running them on 500 runs, and a
    statement holds no values of its own beyond bound parameters, so it is cached.
    """
    condition = filter_condition(filter)
    order = parse_order_by(order_by)
    query = run_query()
    if experiments:
        query = query.where(ExperimentRow.name.in_(list(experiments)))
    if projects is not None:
        query = query.where(RunRow.project.in_(list(projects)))
    if condition is not None:
        query = query.where(condition)
    return _ordered(query, order).offset(bindparam("offset")).limit(bindparam("limit"))


def search_runs(
    platform: Platform,
    filter: str | None = None,
    *,
    experiments: Sequence[str] | None = None,
    order_by: Sequence[str] = (),
    max_results: int = 100,
    page_token: str | None = None,
    projects: Sequence[str] | None = None,
) -> RunPage:
    """Runs matching ``filter`` (see :mod:`ghaf.tracking.search`), ordered and paged.

    ``projects``: only runs of these projects (a server answering one caller); None: all.

    Raises:
        InvalidInputError: the filter, an order-by clause or the page token is invalid.
    """
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInputError(
            f"max_results {max_results} is out of range", hint=f"use 1 to {MAX_RESULTS}"
        )
    scope = None if projects is None else tuple(sorted(projects))
    query = _statement(filter or "", tuple(order_by), tuple(experiments or ()), scope)
    offset = _decode_token(page_token)
    with platform.read_session() as session:
        connection = session.connection()
        rows = list(connection.execute(query, {"offset": offset, "limit": max_results + 1}))
        more = len(rows) > max_results
        runs = load_runs(session, rows[:max_results])
    return RunPage(runs, _encode_token(offset + max_results) if more else None)
