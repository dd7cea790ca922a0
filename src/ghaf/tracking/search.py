"""Run search: a small filter language, parsed (never interpolated) into SQLAlchemy.

Grammar::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := term ("and" term)*
    term       := "(" or_expr ")" | comparison
    comparison := field OP value | field ["not"] "in" "(" value ("," value)* ")"
    field      := ("metrics" | "params" | "tags" | "attributes") "." KEY
                | ("min" | "max") "(" "metrics" "." KEY ")"
    OP         := = | != | < | <= | > | >= | like | ilike
    value      := NUMBER | 'string' | "string"

KEY is a bare name (letters, digits, ``_ - . /``) or a backquoted name.
``metrics.x`` is the latest value; ``min(...)``/``max(...)`` the extremes.
Attributes: run_id, name, status, user, experiment, parent_run_id, start_time, end_time
(times as epoch seconds). Values are always bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select

from ghaf.errors import InvalidInputError
from ghaf.tracking.tables import ExperimentRow, LatestMetricRow, RunParamRow, RunRow, RunTagRow

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | '(?P<squote>(?:[^'\\]|\\.|'')*)'
      | "(?P<dquote>(?:[^"\\]|\\.)*)"
      | `(?P<backquote>[^`]+)`
      | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|\.)
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-/]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"=", "!=", "<", "<=", ">", ">=", "like", "ilike"}
_ENTITIES = {
    "metrics",
    "metric",
    "params",
    "param",
    "tags",
    "tag",
    "attributes",
    "attribute",
    "attr",
    "run",
}
ATTRIBUTES: dict[str, Any] = {
    "run_id": RunRow.id,
    "name": RunRow.name,
    "run_name": RunRow.name,
    "status": RunRow.status,
    "user": RunRow.user,
    "parent_run_id": RunRow.parent_run_id,
    "experiment": ExperimentRow.name,
    "start_time": RunRow.start_time,
    "end_time": RunRow.end_time,
}
_TIME_ATTRIBUTES = {"start_time", "end_time"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise InvalidInputError(
                f"invalid filter {text!r}: unexpected character at position {position}: "
                f"{text[position : position + 12]!r}",
                hint="quote string values: params.model = 'lgbm'",
            )
        kind = match.lastgroup or ""
        raw = match.group(kind)
        start = match.start(kind)
        if kind == "number":
            value: Any = float(raw)
        elif kind in ("squote", "dquote"):
            value = re.sub(r"\\(.)", r"\1", raw.replace("''", "'"))
            kind = "string"
        elif kind == "backquote":
            value, kind = raw, "name"
        elif kind == "word":
            value = raw
            kind = (
                "keyword" if raw.lower() in {"and", "or", "not", "in", "like", "ilike"} else "name"
            )
            if kind == "keyword":
                value = raw.lower()
        else:
            value = raw
        tokens.append(Token(kind, raw, value, start))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Field:
    entity: str  # "metric", "param", "tag", "attribute"
    key: str
    aggregate: str = "latest"  # metrics only: latest, min, max


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: Any  # a float, a str, or a tuple for in / not in


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" / "or"
    items: tuple[Node, ...]


Node = Comparison | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("the filter ends too early")
        self.index += 1
        return token

    def expect(self, kind: str, value: str | None = None) -> Token:
        token = self.take()
        if token.kind != kind and not (kind == "op" and token.kind == "op"):
            raise self.error(
                f"expected {value or kind} at position {token.position}, got {token.text!r}"
            )
        if value is not None and token.value != value:
            raise self.error(f"expected {value!r} at position {token.position}, got {token.text!r}")
        return token

    def error(self, message: str) -> InvalidInputError:
        return InvalidInputError(
            f"invalid filter {self.text!r}: {message}",
            hint="e.g. metrics.auc > 0.9 and params.model = 'lgbm' and tags.team = 'risk'",
        )

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            token = self.take()
            raise self.error(f"unexpected {token.text!r} at position {token.position}")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self._at_keyword("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.term()]
        while self._at_keyword("and"):
            self.take()
            items.append(self.term())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def _at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "keyword" and token.value == word

    def term(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "op" and token.value == "(":
            self.take()
            node = self.or_expr()
            self.expect("op", ")")
            return node
        return self.comparison()

    def field(self) -> Field:
        first = self.take()
        if first.kind != "name":
            raise self.error(f"expected a field at position {first.position}, got {first.text!r}")
        head = str(first.value).lower()
        if head in ("min", "max") and self._at_op("("):
            self.take()
            inner = self.field()
            self.expect("op", ")")
            if inner.entity != "metric":
                raise self.error(f"{head}() applies to metrics only")
            return Field("metric", inner.key, head)
        if head not in _ENTITIES or not self._at_op("."):
            raise self.error(
                f"field {first.text!r} must be metrics.KEY, params.KEY, tags.KEY or attributes.NAME"
            )
        self.take()
        key = self._key()
        entity = {"metrics": "metric", "params": "param", "tags": "tag"}.get(head, head)
        if entity in ("attributes", "attribute", "attr", "run"):
            entity = "attribute"
            if key not in ATTRIBUTES:
                raise self.error(
                    f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}"
                )
        return Field(entity, key)

    def _key(self) -> str:
        parts = [str(self.expect("name").value)]
        # Bare keys may contain dots (metrics.val.auc); stop before an operator word.
        while (
            self._at_op(".")
            and self.index + 1 < len(self.tokens)
            and self.tokens[self.index + 1].kind == "name"
        ):
            self.take()
            parts.append(str(self.take().value))
        return ".".join(parts)

    def _at_op(self, value: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.value == value

    def comparison(self) -> Comparison:
        field = self.field()
        token = self.take()
        negate = False
        if token.kind == "keyword" and token.value == "not":
            negate = True
            token = self.take()
        if token.kind == "keyword" and token.value == "in":
            self.expect("op", "(")
            values = [self.value()]
            while self._at_op(","):
                self.take()
                values.append(self.value())
            self.expect("op", ")")
            return self._checked(field, "not in" if negate else "in", tuple(values))
        if negate:
            raise self.error("'not' must be followed by 'in'")
        op = "!=" if token.value == "<>" else str(token.value)
        if op not in _COMPARE:
            raise self.error(
                f"expected a comparison at position {token.position}, got {token.text!r}"
            )
        return self._checked(field, op, self.value())

    def value(self) -> Any:
        token = self.take()
        if token.kind not in ("number", "string"):
            raise self.error(
                f"expected a number or a quoted string at position {token.position}, "
                f"got {token.text!r}"
            )
        return token.value

    def _checked(self, field: Field, op: str, value: Any) -> Comparison:
        values = value if isinstance(value, tuple) else (value,)
        numeric = field.entity == "metric" or field.key in _TIME_ATTRIBUTES
        if numeric:
            if op in ("like", "ilike") or not all(isinstance(v, float) for v in values):
                raise self.error(f"{field.entity} {field.key!r} compares with numbers only")
        else:
            if not all(isinstance(v, str) for v in values):
                raise self.error(f"{field.entity} {field.key!r} compares with quoted strings")
            if op in ("<", "<=", ">", ">=") and field.entity != "attribute":
                raise self.error(f"{field.entity}s compare with =, !=, like, ilike or in")
        return Comparison(field, op, value)


def parse_filter(text: str) -> Node | None:
    """Parse a filter string into a tree (``None`` for an empty filter)."""
    if not text or not text.strip():
        return None
    return _Parser(text).parse()


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == "in":
        result = column.in_(list(value))
    elif op == "not in":
        result = column.not_in(list(value))
    elif op == "like":
        result = column.like(value)
    elif op == "ilike":
        result = column.ilike(value)
    else:
        result = _OPERATORS[op](column, value)
    return result


_OPERATORS: dict[str, Any] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def metric_column(table: Any, aggregate: str) -> Any:
    """The column of ``table`` (``LatestMetricRow`` or an alias) for a metric aggregate."""
    return {"latest": table.value, "min": table.min_value, "max": table.max_value}[aggregate]


def _time(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_time(v) for v in value)
    return datetime.fromtimestamp(float(value), UTC)


def to_sql(node: Node, joined: Mapping[str, Any] | None = None) -> ColumnElement[bool]:
    """The SQLAlchemy condition over ``RunRow`` (joined with ``ExperimentRow``) for ``node``.

    ``joined``: metric key -> an alias of ``LatestMetricRow`` inner-joined on that key
    (for the order); a comparison on such a metric reads the joined row (one per run and
    key) instead of asking whether one exists, which lets the planner use one index range
    both to filter and to order.
    """
    if isinstance(node, BoolOp):
        parts = [to_sql(item, joined) for item in node.items]
        return and_(*parts) if node.op == "and" else or_(*parts)
    field, op, value = node.field, node.op, node.value
    column: Any
    if field.entity == "attribute":
        column = ATTRIBUTES[field.key]
        if field.key in _TIME_ATTRIBUTES:
            value = _time(value)
        condition = _compare(column, op, value)
        if op in ("!=", "not in") and field.key in ("parent_run_id", "end_time"):
            condition = or_(condition, column.is_(None))
        return condition
    if field.entity == "metric":
        alias = (joined or {}).get(field.key)
        if alias is not None:
            return _compare(metric_column(alias, field.aggregate), op, value)
        column = metric_column(LatestMetricRow, field.aggregate)
        return exists(
            select(LatestMetricRow.run_id).where(
                LatestMetricRow.run_id == RunRow.id,
                LatestMetricRow.key == field.key,
                _compare(column, op, value),
            )
        )
    table = RunParamRow if field.entity == "param" else RunTagRow
    return exists(
        select(table.run_id).where(
            table.run_id == RunRow.id, table.key == field.key, _compare(table.value, op, value)
        )
    )


def metrics_required(node: Node | None) -> frozenset[str]:
    """The metric keys every run matching ``node`` has logged (a comparison on a metric
    holds only for runs that logged it), so an order by one of them needs no outer join."""
    if node is None:
        return frozenset()
    if isinstance(node, Comparison):
        return frozenset({node.field.key}) if node.field.entity == "metric" else frozenset()
    parts = [metrics_required(item) for item in node.items]
    if node.op == "and":
        return frozenset().union(*parts)
    return frozenset.intersection(*parts)


def filter_condition(text: str | None) -> ColumnElement[bool] | None:
    """Parse ``text`` and compile it; ``None`` when empty."""
    node = parse_filter(text or "")
    return None if node is None else to_sql(node)


__all__ = [
    "ATTRIBUTES",
    "BoolOp",
    "Comparison",
    "Field",
    "filter_condition",
    "parse_filter",
    "to_sql",
]
