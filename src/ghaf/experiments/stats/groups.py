"""One variant's sufficient statistics, and the JSON form every result shares."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ghaf.errors import InvalidInputError


@dataclass(frozen=True)
class GroupStats:
    """A variant's units summarised: count, mean and sample variance (ddof=1).

    The tests need only these, so an experiment of millions of units is judged from
    three numbers per variant, and simulations can feed arrays of them.
    """

    name: str
    n: int
    mean: float
    variance: float

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> GroupStats:
        """Back from :func:`jsonable`'s form (null numbers are NaN again)."""
        return cls(
            str(record["name"]),
            int(record["n"]),
            number(record["mean"]),
            number(record["variance"]),
        )

    @classmethod
    def from_values(cls, name: str, values: npt.ArrayLike) -> GroupStats:
        """Summarise one variant's per-unit values (NaN is kept: it poisons the mean and
        :func:`~ghaf.experiments.stats.decision.decide` then refuses to ship)."""
        array = np.asarray(values, dtype=np.float64)
        n = int(array.size)
        mean = float(array.mean()) if n else math.nan
        variance = float(array.var(ddof=1)) if n > 1 else math.nan
        return cls(name, n, mean, variance)

    @classmethod
    def from_conversions(cls, name: str, n: int, conversions: int) -> GroupStats:
        """A 0/1 metric from its counts: mean p, variance p(1-p) * n/(n-1)."""
        if n < 0 or conversions < 0 or conversions > n:
            raise InvalidInputError(
                f"variant {name!r}: conversions {conversions} must lie in [0, n={n}]",
                hint="pass the number of units and how many of them converted",
            )
        if n == 0:
            return cls(name, 0, math.nan, math.nan)
        p = conversions / n
        variance = p * (1 - p) * n / (n - 1) if n > 1 else math.nan
        return cls(name, n, p, variance)


def number(value: Any) -> float:
    """A JSON number back as a float: null (a NaN or infinity written out) is NaN."""
    return math.nan if value is None else float(value)


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: dataclasses as dicts, tuples as lists, NaN/inf as None
    (JSON has no NaN; a missing number must read as missing, not as a string)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def check_alpha(alpha: float) -> float:
    """``alpha`` if it lies in (0, 1), else a clear error."""
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(
            f"alpha {alpha} must lie strictly between 0 and 1", hint="e.g. --alpha 0.05"
        )
    return alpha
