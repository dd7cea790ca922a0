"""Score intervals for a proportion (Wilson) and a difference of two (Newcombe).

Wald intervals collapse to a point at 0 or 1 successes out of n (an error rate of 0, an
accuracy of 1), which is exactly where a canary's guardrails live; score intervals stay
honest there. Each side of a two-sided interval at ``alpha`` is a one-sided bound at
``alpha / 2``: a guardrail that wants 95 % one-sided confidence asks for ``alpha=0.1``.
"""

from __future__ import annotations

import math

from scipy import stats

from ghaf.errors import InvalidInputError


def _z(alpha: float) -> float:
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha {alpha} is not in (0, 1)", hint="e.g. alpha=0.1")
    return float(stats.norm.isf(alpha / 2.0))


def _counts(successes: int, n: int) -> None:
    if n < 1 or not 0 <= successes <= n:
        raise InvalidInputError(
            f"{successes} successes of {n} is not a proportion",
            hint="give 0 <= successes <= n and n >= 1",
        )


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` at level ``1 - alpha``.

    Raises:
        InvalidInputError: ``n < 1``, successes outside ``[0, n]``, alpha outside (0, 1).
    """
    _counts(successes, n)
    z = _z(alpha)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    low, high = centre - half, centre + half
    # the exact ends: no rounding may put 0 successes above 0 or n successes below 1
    return (0.0 if successes == 0 else max(0.0, low), 1.0 if successes == n else min(1.0, high))


def newcombe_difference(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> tuple[float, float, float]:
    """``(p_a - p_b, low, high)``: Newcombe's hybrid score interval (method 10) of the
    difference of two independent proportions at level ``1 - alpha``.

    Raises:
        InvalidInputError: as :func:`wilson_interval`, for either group.
    """
    p_a, p_b = successes_a / max(n_a, 1), successes_b / max(n_b, 1)
    low_a, high_a = wilson_interval(successes_a, n_a, alpha)
    low_b, high_b = wilson_interval(successes_b, n_b, alpha)
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return diff, max(-1.0, low), min(1.0, high)
