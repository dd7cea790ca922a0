"""Decide a quantile-within-bounds check by counting ranks, without sorting the column.

An exact quantile (DuckDB's ``quantile_cont``) holds every value of the column and
selects from them; judging it against ``[min, max]`` only needs to know where the
two order statistics it interpolates lie. With ``n`` non-null values the quantile
at ``q`` interpolates ``x[F]`` and ``x[C]`` (``F``/``C`` the floor/ceiling of
``(n - 1) * q``, ascending order, NaN last). ``x[F] >= lo`` exactly when at most
``F`` values are below ``lo``, and ``x[C] <= hi`` exactly when at most ``n - 1 - C``
are above ``hi``: two filtered counts in the contract's single scan.

DuckDB interpolates doubles as ``x[F] * (1 - d) + x[C] * d``: between ``x[F]`` and
``x[C]`` up to a few roundings, so the counts use bounds narrowed by a margin far
wider than that error (and values beyond +-2**1000, which could overflow the sum,
never pass by rank). A check
the counts cannot prove passing (one that fails, or an order statistic within the
margin of a bound) is decided by the exact quantile instead: the verdict is always
the exact one, and the cheap path covers the common passing case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

FINITE_LIMIT = 2.0**1000
"""Order statistics beyond this magnitude are never judged by rank (overflow headroom)."""
MARGIN = 2.0**-48
"""Relative narrowing of the bounds: 32x the unit roundoff, above the interpolation's error."""
TINY = 2.0**-1060
"""Absolute narrowing, for bounds near zero (subnormal rounding)."""


@dataclass(frozen=True)
class RankBounds:
    """The narrowed bounds the rank counts compare against."""

    low: float
    high: float


def rank_bounds(low: float | None, high: float | None) -> RankBounds | None:
    """``[low, high]`` narrowed by the rounding margin, or ``None`` when nothing is left.

    Each side's margin is relative to its own bound: the rounding of
    ``x[F] * (1 - d) + x[C] * d`` that could cross ``low`` is relative to the parts of
    the order statistics below zero when ``low <= 0`` (at most ``|low|``) and to
    ``x[F]`` itself when ``low > 0``; the upper side mirrors it. A missing bound is
    +-2**1000, so that the order statistics are finite and the sum cannot overflow.
    """
    lo = -FINITE_LIMIT if low is None else max(float(low), -FINITE_LIMIT)
    hi = FINITE_LIMIT if high is None else min(float(high), FINITE_LIMIT)
    narrowed = RankBounds(lo + MARGIN * abs(lo) + TINY, hi - MARGIN * abs(hi) - TINY)
    return narrowed if narrowed.low <= narrowed.high else None


def rank_countable(kind: pa.DataType) -> bool:
    """Columns whose ``quantile_cont`` is a DOUBLE interpolation: doubles and integers."""
    return bool(pa.types.is_float64(kind) or pa.types.is_integer(kind))


def rank_sql(column: str, bounds: RankBounds) -> str:
    """One aggregate (a struct): non-null count, values below and above the bounds."""
    value = f"CAST({column} AS DOUBLE)"
    return (
        f"struct_pack(n := count({column}), "
        f"below := count_if({value} < {_double(bounds.low)}), "
        f"above := count_if({value} > {_double(bounds.high)}))"
    )


def _double(value: float) -> str:
    """A DOUBLE literal parsed from its shortest repr (a bare number would be a DECIMAL)."""
    return f"CAST('{value!r}' AS DOUBLE)"


def passes_by_rank(counts: dict[str, Any], q: float) -> bool:
    """Whether the counts prove the quantile at ``q`` inside the bounds (else: compute it)."""
    n = int(counts["n"])
    if n == 0:
        return False
    position = (n - 1) * q
    floor, ceil = math.floor(position), math.ceil(position)
    return int(counts["below"]) <= floor and int(counts["above"]) <= n - 1 - ceil
