"""Cost: what runs, pipeline steps, batch jobs and deployments held and used, and what
that costs on the price sheet (OpenCost's rule: max(request, usage) x price)."""

from ghaf.cost.base import KINDS, StoredUsage, Usage
from ghaf.cost.prices import Charge, PriceSheet
from ghaf.cost.report import GROUPINGS, cost_report, parse_since
from ghaf.cost.store import list_usage, project_usage, record_usage

__all__ = [
    "GROUPINGS",
    "KINDS",
    "Charge",
    "PriceSheet",
    "StoredUsage",
    "Usage",
    "cost_report",
    "list_usage",
    "parse_since",
    "project_usage",
    "record_usage",
]
