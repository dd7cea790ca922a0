"""Records of the monitoring concern: options, per-column drift results, the drift report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Method = Literal["ks", "chi2", "psi", "js", "wasserstein", "tv"]
Verdict = Literal[
    "drift", "ok", "insufficient data", "missing", "type mismatch", "all null", "skipped"
]
TESTS: frozenset[str] = frozenset({"ks", "chi2"})
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "psi": 0.2,
    "js": 0.1,
    "wasserstein": 0.1,
    "tv": 0.1,
}
"""Tests: the false-discovery rate (on BH-adjusted p-values). Distances: drift at or above."""


@dataclass(frozen=True)
class ColumnOverride:
    """Per-column choice of method and threshold, or ``skip`` to leave a column out."""

    method: Method | None = None
    threshold: float | None = None
    skip: bool = False


@dataclass(frozen=True)
class DriftOptions:
    """How drift is decided.

    The default rule: numeric columns by two-sample KS, categorical ones by a chi-square
    test of homogeneity, Benjamini-Hochberg across all tested columns at ``alpha``. Tests
    run on each profile's uniform sample (every row up to ``capacity``, 100k by default),
    so the smallest shift they can call is fixed by the sample size rather than
    shrinking towards zero as windows grow: at 100k vs 100k rows KS calls a shift of
    ~0.01 in CDF (about 0.025 sd), while on 100M rows an uncapped test would call shifts
    of 0.0003 sd that no one should act on. Below ``min_rows`` non-null values on a side
    the verdict is "insufficient data" instead of a test nobody can trust.
    """

    alpha: float = 0.05
    min_rows: int = 30
    bins: int = 10
    overrides: dict[str, ColumnOverride] = field(default_factory=dict)
    domain_classifier: bool = True


@dataclass
class Histogram:
    """What the report draws for a column: bin labels/edges and both windows' proportions."""

    labels: list[str]
    reference: list[float]
    current: list[float]
    edges: list[float] | None = None


@dataclass
class ColumnDrift:
    """One column's result."""

    column: str
    kind: str
    method: str
    verdict: Verdict
    statistic: float | None = None
    p_value: float | None = None
    adjusted_p: float | None = None
    threshold: float | None = None
    distances: dict[str, float] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0
    reference_missing: float = 0.0
    current_missing: float = 0.0
    note: str = ""
    histogram: Histogram | None = None

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"

    @property
    def score(self) -> float:
        """Sorting key: how strongly a column moved (drifted first, then by distance)."""
        return (1.0 if self.drifted else 0.0) + min(self.distances.get("js", 0.0), 0.999)


@dataclass
class DomainResult:
    """The multivariate check: can a classifier tell the windows apart?"""

    auc: float
    threshold: float
    p_value: float
    drifted: bool
    rows_used: int
    top_columns: list[tuple[str, float]]
    note: str = ""


@dataclass
class DriftReport:
    """The result of comparing a current window with a reference."""

    reference_name: str
    current_name: str
    reference_rows: int
    current_rows: int
    columns: list[ColumnDrift]
    alpha: float
    sampled: bool
    domain: DomainResult | None = None
    created_at: str = ""
    seconds: float = 0.0

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self, *, histograms: bool = True) -> dict[str, Any]:
        """A JSON-ready dict; ``histograms=False`` leaves the chart data out."""
        body = asdict(self)
        body["drifted_columns"] = self.drifted_columns
        if not histograms:
            for column in body["columns"]:
                column.pop("histogram", None)
        return body
