"""Data quality of a window: missing, out-of-range and unseen values, schema violations.

Expectations come from the dataset's contract when there is one (types, nullability,
ranges, allowed values), else from the reference profile (its types, missing rate,
observed range and categories).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ghaf.errors import InvalidInputError
from ghaf.monitoring.profile import Profile, kind_of

if TYPE_CHECKING:
    from ghaf.data.contracts import Contract


@dataclass
class ColumnQuality:
    """One column's quality on the window."""

    column: str
    missing_rate: float = 0.0
    reference_missing_rate: float | None = None
    out_of_range_rate: float = 0.0
    unseen_rate: float = 0.0
    problems: list[str] = field(default_factory=list)


@dataclass
class QualityReport:
    """A window's quality; ``violations`` are schema problems, ``columns`` the rates."""

    rows: int
    violations: list[str]
    columns: list[ColumnQuality]
    against: str

    @property
    def ok(self) -> bool:
        return not self.violations and not any(c.problems for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _rate(mask: pa.ChunkedArray | pa.Array, rows: int) -> float:
    return float(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0) / rows if rows else 0.0


def _out_of_range(column: pa.ChunkedArray, lo: Any, hi: Any, rows: int) -> float:
    masks = []
    if lo is not None:
        masks.append(pc.less(column, pa.scalar(lo).cast(column.type)))
    if hi is not None:
        masks.append(pc.greater(column, pa.scalar(hi).cast(column.type)))
    if not masks:
        return 0.0
    mask = masks[0] if len(masks) == 1 else pc.or_(masks[0], masks[1])
    return _rate(pc.fill_null(mask, False), rows)


def _unseen(column: pa.ChunkedArray, allowed: list[Any], rows: int) -> float:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    inside = pc.is_in(pc.cast(column, pa.string()), value_set=pa.array(map(str, allowed)))
    return _rate(pc.and_(pc.invert(inside), pc.is_valid(column)), rows)


def check_quality(
    window: pa.Table,
    *,
    reference: Profile | None = None,
    contract: Contract | None = None,
    max_missing_increase: float = 0.05,
) -> QualityReport:
    """Check ``window`` against ``contract`` when given, else against ``reference``.

    A column's missing rate counts as a problem when it exceeds the reference's by
    more than ``max_missing_increase`` (or any null where the contract forbids nulls).
    """
    rows = window.num_rows
    if rows == 0:
        raise InvalidInputError("the window has no rows", hint="check a window that has data")
    if contract is not None:
        return _against_contract(window, contract, rows)
    if reference is None:
        raise InvalidInputError(
            "nothing to check the window against", hint="pass a reference profile or a contract"
        )
    violations: list[str] = []
    results: list[ColumnQuality] = []
    for name, summary in reference.columns.items():
        if name not in window.column_names:
            violations.append(f"column {name!r} is missing")
            continue
        column = window.column(name)
        if kind_of(column.type) != summary.kind:
            violations.append(
                f"column {name!r} is {column.type}, the reference has {summary.dtype}"
            )
            continue
        result = ColumnQuality(
            name,
            missing_rate=_missing(column, rows),
            reference_missing_rate=summary.nulls / summary.count if summary.count else 0.0,
        )
        if summary.kind == "numeric":
            result.out_of_range_rate = _out_of_range(column, summary.minimum, summary.maximum, rows)
        elif summary.kind == "categorical" and summary.categories:
            result.unseen_rate = _unseen(column, list(summary.categories), rows)
        if result.missing_rate > (result.reference_missing_rate or 0.0) + max_missing_increase:
            result.problems.append(
                f"missing rate {result.missing_rate:.1%} vs {result.reference_missing_rate:.1%}"
            )
        results.append(result)
    extra = [n for n in window.column_names if n not in reference.columns]
    violations += [f"column {n!r} is not in the reference" for n in extra]
    return QualityReport(rows, violations, results, "reference profile")


def _missing(column: pa.ChunkedArray, rows: int) -> float:
    nulls = column.null_count
    if pa.types.is_floating(column.type):
        nulls += int(
            pc.sum(pc.cast(pc.fill_null(pc.is_nan(column), False), pa.int64())).as_py() or 0
        )
    return float(nulls / rows)


def _against_contract(window: pa.Table, contract: Contract, rows: int) -> QualityReport:
    from ghaf.data.contracts import Allowed, NotNull, Range, type_matches

    violations: list[str] = []
    results: dict[str, ColumnQuality] = {}
    for spec in contract.columns:
        if spec.name not in window.column_names:
            violations.append(f"column {spec.name!r} is missing")
            continue
        column = window.column(spec.name)
        if spec.type and not type_matches(spec.type, column.type):
            violations.append(
                f"column {spec.name!r} is {column.type}, the contract says {spec.type}"
            )
        results[spec.name] = ColumnQuality(spec.name, missing_rate=_missing(column, rows))
    if contract.strict_columns:
        known = {c.name for c in contract.columns}
        violations += [
            f"column {n!r} is not in the contract" for n in window.column_names if n not in known
        ]
    for check in contract.all_checks():
        target = getattr(check, "column", None)
        if target not in results:
            continue
        result, column = results[target], window.column(target)
        if isinstance(check, NotNull) and result.missing_rate > 0:
            result.problems.append(f"{result.missing_rate:.1%} null, the contract forbids nulls")
        elif isinstance(check, Range):
            result.out_of_range_rate = _out_of_range(column, check.min, check.max, rows)
            if result.out_of_range_rate:
                result.problems.append(f"{result.out_of_range_rate:.1%} outside {check.label}")
        elif isinstance(check, Allowed):
            result.unseen_rate = _unseen(column, list(check.values), rows)
            if result.unseen_rate:
                result.problems.append(f"{result.unseen_rate:.1%} not in the allowed values")
    return QualityReport(rows, violations, list(results.values()), "contract")
