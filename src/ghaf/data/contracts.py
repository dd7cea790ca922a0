"""Data contracts: columns (types, nullability, tags), checks with severities, residency.

Write one in YAML (:func:`load_contract`) or build it in Python::

    Contract(
        columns=(ColumnSpec("id", "int64", nullable=False, tag="public"),),
        checks=(Unique(("id",)), Range("amount", min=0), RowCount(min=1)),
    )
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml

from ghaf.data import engine
from ghaf.errors import InvalidInputError

Severity = Literal["error", "warn"]
TAGS = ("pii", "sensitive", "public")

_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float": pa.float32(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "double": pa.float64(),
    "string": pa.string(),
    "large_string": pa.large_string(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "date32": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:, tz=([A-Za-z0-9_/+:-]+))?\]$")


def parse_type(name: str, where: str) -> pa.DataType:
    """An Arrow type from its name (``int64``, ``double``, ``timestamp[s, tz=UTC]``...)."""
    if name in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[name]
    match = _TIMESTAMP.match(name)
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2))
    raise InvalidInputError(
        f"{where}: unknown type {name!r}",
        hint=f"use one of {', '.join(_SIMPLE_TYPES)} or timestamp[UNIT, tz=ZONE]",
    )


def type_matches(expected: str, actual: pa.DataType) -> bool:
    """Whether ``actual`` satisfies the contract type ``expected`` (``timestamp`` = any unit)."""
    if pa.types.is_dictionary(actual):
        actual = actual.value_type
    if expected == "timestamp":
        return bool(pa.types.is_timestamp(actual))
    if expected in ("string", "large_string"):
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    return bool(actual.equals(parse_type(expected, "contract")))


@dataclass(frozen=True)
class ColumnSpec:
    """A column the data must have: its type, whether nulls are allowed, its classification."""

    name: str
    type: str | None = None
    nullable: bool = True
    tag: str | None = None


@dataclass(frozen=True, kw_only=True)
class Check:
    """Base of every check: a severity and an optional name."""

    severity: Severity = "error"
    name: str | None = None

    kind = "check"
    row_level = False

    @property
    def label(self) -> str:
        return self.name or f"{self.kind}({', '.join(self.columns_checked())})"

    def columns_checked(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True, kw_only=True)
class NotNull(Check):
    column: str
    kind = "not_null"
    row_level = True

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Range(Check):
    """``min <= column <= max`` (either bound optional); nulls pass."""

    column: str
    min: float | int | datetime | None = None
    max: float | int | datetime | None = None
    kind = "range"
    row_level = True

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Allowed(Check):
    column: str
    values: tuple[Any, ...]
    kind = "allowed"
    row_level = True

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Regex(Check):
    """The value contains a match of ``pattern`` (RE2 syntax; anchor with ``^...$``)."""

    column: str
    pattern: str
    kind = "regex"
    row_level = True

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Unique(Check):
    """No two rows share the key (one column or a compound key)."""

    columns: tuple[str, ...]
    kind = "unique"

    def columns_checked(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True, kw_only=True)
class References(Check):
    """Every non-null ``column`` value exists as ``key`` in dataset ``dataset`` (a ref)."""

    column: str
    dataset: str
    key: str
    kind = "references"

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class Freshness(Check):
    """The newest ``column`` value is at most ``max_age`` older than ``now`` (default: now)."""

    column: str
    max_age: timedelta
    now: datetime | None = None
    kind = "freshness"

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, kw_only=True)
class RowCount(Check):
    min: int | None = None
    max: int | None = None
    kind = "row_count"


@dataclass(frozen=True, kw_only=True)
class Distribution(Check):
    """A statistic (``mean``, ``median`` or ``quantile`` at ``q``) within [min, max], or
    within ``tolerance`` (a fraction, 0.1 = 10%) of the same statistic on ``reference``."""

    column: str
    stat: Literal["mean", "median", "quantile", "std"] = "mean"
    q: float | None = None
    min: float | None = None
    max: float | None = None
    reference: str | None = None
    tolerance: float | None = None
    kind = "distribution"

    def columns_checked(self) -> tuple[str, ...]:
        return (self.column,)


CHECK_KINDS: dict[str, type[Check]] = {
    cls.kind: cls
    for cls in (
        NotNull,
        Range,
        Allowed,
        Regex,
        Unique,
        References,
        Freshness,
        RowCount,
        Distribution,
    )
}


@dataclass(frozen=True)
class Contract:
    """What a dataset must look like, how its columns are classified and where it may live."""

    columns: tuple[ColumnSpec, ...] = ()
    checks: tuple[Check, ...] = ()
    residency: str | None = None
    quarantine: bool = False
    name: str | None = None
    strict_columns: bool = False
    source_path: str | None = field(default=None, compare=False)

    @property
    def column_tags(self) -> dict[str, str]:
        return {c.name: c.tag for c in self.columns if c.tag}

    def all_checks(self) -> list[Check]:
        """The explicit checks plus those the column specs imply (not-null)."""
        implied: list[Check] = [
            NotNull(column=c.name, name=f"not_null({c.name})")
            for c in self.columns
            if not c.nullable
        ]
        return implied + list(self.checks)

    def arrow_types(self) -> dict[str, pa.DataType]:
        """Concrete Arrow types of the typed columns (used to read CSV, JSON lines)."""
        return {c.name: parse_type(c.type, f"column {c.name!r}") for c in self.columns if c.type}


_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_COLUMN_KEYS = {"type", "nullable", "unique", "min", "max", "allowed", "regex", "tag", "severity"}
_TOP_KEYS = {"name", "dataset", "residency", "quarantine", "columns", "checks", "strict_columns"}


def parse_age(value: Any, where: str) -> timedelta:
    """``"3d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = _AGE.match(str(value).strip())
    if not match:
        raise InvalidInputError(
            f"{where}: max_age {value!r} is not a duration", hint="use e.g. 3d, 12h, 30m, 45s"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _severity(value: Any, where: str) -> Severity:
    if value not in ("error", "warn"):
        raise InvalidInputError(f"{where}: severity {value!r} is invalid", hint="use error or warn")
    return "error" if value == "error" else "warn"


def _check_from_dict(body: Mapping[str, Any], where: str) -> Check:
    if not isinstance(body, Mapping) or "kind" not in body:
        raise InvalidInputError(
            f"{where}: a check needs a 'kind'", hint=f"kinds: {', '.join(CHECK_KINDS)}"
        )
    kind = body["kind"]
    cls = CHECK_KINDS.get(kind)
    if cls is None:
        raise InvalidInputError(
            f"{where}: unknown check kind {kind!r}", hint=f"use one of {', '.join(CHECK_KINDS)}"
        )
    args = {k: v for k, v in body.items() if k != "kind"}
    where = f"{where} ({kind})"
    if "severity" in args:
        args["severity"] = _severity(args["severity"], where)
    if cls is Unique:
        columns = args.pop("columns", args.pop("column", None))
        args["columns"] = tuple([columns] if isinstance(columns, str) else columns or ())
    if cls is Allowed and "values" in args:
        args["values"] = tuple(args["values"])
    if cls is Freshness and "max_age" in args:
        args["max_age"] = parse_age(args["max_age"], where)
    try:
        check = cls(**args)
    except TypeError as exc:
        detail = str(exc).split("__init__() ", 1)[-1]
        raise InvalidInputError(f"{where}: {detail}", hint="see the contract reference") from exc
    validate_check(check, where)
    return check


def validate_check(check: Check, where: str) -> None:
    """Refuse checks that cannot run: bad regex, empty keys, missing bounds."""
    if isinstance(check, Regex):
        import duckdb  # on use: importing this module must not load DuckDB

        try:
            re.compile(check.pattern)
            with engine.cursor() as cursor:  # RE2, as the contract will run it
                cursor.execute("SELECT regexp_matches('', ?)", [check.pattern]).fetchall()
        except (re.error, duckdb.Error) as exc:
            raise InvalidInputError(
                f"{where}: regex {check.pattern!r} is invalid: {exc}",
                hint="fix the pattern (RE2 syntax: no look-arounds or back-references)",
            ) from exc
    if isinstance(check, Unique) and not check.columns:
        raise InvalidInputError(f"{where}: unique needs columns", hint="columns: [a, b]")
    if isinstance(check, Distribution):
        if check.stat == "quantile" and (check.q is None or not 0 <= check.q <= 1):
            raise InvalidInputError(f"{where}: quantile needs q in [0, 1]", hint="q: 0.9")
        if check.reference is None and check.min is None and check.max is None:
            raise InvalidInputError(
                f"{where}: distribution needs min/max or a reference with tolerance",
                hint="e.g. min: 10, max: 20  or  reference: NAME:1, tolerance: 0.1",
            )
    if isinstance(check, Range) and check.min is None and check.max is None:
        raise InvalidInputError(f"{where}: range needs min or max", hint="min: 0")


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def _mapping(value: Any, where: str, example: str) -> Mapping[Any, Any]:
    """``value`` as a mapping (``None`` is empty); YAML gives lists and scalars too."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where} must be a mapping, not {_kind(value)}", hint=example)
    return value


def _sequence(value: Any, where: str, example: str) -> list[Any]:
    """``value`` as a list (``None`` is empty)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{where} must be a list, not {_kind(value)}", hint=example)
    return list(value)


def contract_from_dict(body: Mapping[str, Any], *, where: str = "contract") -> Contract:
    """Build a contract from parsed YAML/JSON."""
    if not isinstance(body, Mapping):
        raise InvalidInputError(f"{where}: expected a mapping at the top", hint="see the docs")
    unknown = sorted(set(body) - _TOP_KEYS)
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown key {unknown[0]!r}", hint=f"keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    columns: list[ColumnSpec] = []
    checks: list[Check] = []
    by_name = _mapping(
        body.get("columns"), f"{where}: columns", "columns: {id: {type: int64}, x: {type: double}}"
    )
    for name, spec in by_name.items():
        here = f"{where}: column {name!r}"
        if not isinstance(name, str):
            raise InvalidInputError(
                f"{where}: column name {name!r} is not text", hint=f"quote it: '{name}': ..."
            )
        spec = _mapping(spec, here, f"{name}: {{type: int64, nullable: false}}")
        bad = sorted(set(spec) - _COLUMN_KEYS)
        if bad:
            raise InvalidInputError(
                f"{here}: unknown key {bad[0]!r}", hint=f"keys: {', '.join(sorted(_COLUMN_KEYS))}"
            )
        if spec.get("type") is not None:
            parse_type(str(spec["type"]), here)
        tag = spec.get("tag")
        if tag is not None and tag not in TAGS:
            raise InvalidInputError(f"{here}: tag {tag!r} is unknown", hint=f"use {TAGS}")
        severity = _severity(spec.get("severity", "error"), here)
        columns.append(ColumnSpec(name, spec.get("type"), bool(spec.get("nullable", True)), tag))
        if spec.get("unique"):
            checks.append(Unique(columns=(name,), severity=severity))
        if "min" in spec or "max" in spec:
            checks.append(
                Range(column=name, min=spec.get("min"), max=spec.get("max"), severity=severity)
            )
        if "allowed" in spec:
            values = _sequence(spec["allowed"], f"{here}: allowed", "allowed: ['a', 'b']")
            checks.append(Allowed(column=name, values=tuple(values), severity=severity))
        if "regex" in spec:
            check = Regex(column=name, pattern=str(spec["regex"]), severity=severity)
            validate_check(check, here)
            checks.append(check)
    checks_body = _sequence(
        body.get("checks"), f"{where}: checks", "checks: [{kind: row_count, min: 1}]"
    )
    for index, item in enumerate(checks_body):
        checks.append(_check_from_dict(item, f"{where}: checks[{index}]"))
    return Contract(
        columns=tuple(columns),
        checks=tuple(checks),
        residency=body.get("residency"),
        quarantine=bool(body.get("quarantine", False)),
        name=body.get("name") or body.get("dataset"),
        strict_columns=bool(body.get("strict_columns", False)),
    )


def load_contract(path: Path | str) -> Contract:
    """Read a YAML contract file.

    Raises:
        InvalidInputError: unreadable file, bad YAML, unknown check or key, bad regex.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read contract {path}: {exc.strerror}", hint="check the path"
        ) from exc
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"contract {path} is not valid YAML: {exc}") from exc
    contract = contract_from_dict(body or {}, where=str(path))
    return Contract(
        columns=contract.columns,
        checks=contract.checks,
        residency=contract.residency,
        quarantine=contract.quarantine,
        name=contract.name,
        strict_columns=contract.strict_columns,
        source_path=str(path),
    )


def as_contract(value: Contract | Path | str | Mapping[str, Any] | None) -> Contract | None:
    """Accept a contract, a YAML path, or a parsed mapping."""
    if value is None or isinstance(value, Contract):
        return value
    if isinstance(value, Mapping):
        return contract_from_dict(value)
    return load_contract(value)


def checks_named(contract: Contract) -> Sequence[Check]:
    """All checks, in order, each with a unique label."""
    return contract.all_checks()
