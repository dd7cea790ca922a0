"""SLOs: error budgets, multi-window burn-rate verdicts, and their Prometheus rules."""

from ghaf.slo.base import DEFAULT_WINDOWS, SLO, BurnWindow
from ghaf.slo.engine import EventSeries, Verdict, evaluate, first_firing, verdicts_at

__all__ = [
    "DEFAULT_WINDOWS",
    "SLO",
    "BurnWindow",
    "EventSeries",
    "Verdict",
    "evaluate",
    "first_firing",
    "verdicts_at",
]
