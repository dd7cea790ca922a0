"""Demo stage: what the champion's training pipeline and the live deployment cost.

Both are read back from the usage they recorded (each pipeline step attempt with its
``pipeline.step_update``, the running ``ghaf serve`` in segments) and priced on the
home's price sheet (OpenCost's defaults unless ``cost`` says otherwise): each resource
max(request, usage) x price, idle cost apart, and the deployment's cost per 1,000
predictions over the segments it has recorded so far.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghaf.cost.base import StoredUsage
from ghaf.cost.prices import Charge, PriceSheet, Quantities
from ghaf.cost.store import list_usage
from ghaf.demo.runner import DemoEnv, need
from ghaf.demo.state import DemoState
from ghaf.platform import Platform


@dataclass(frozen=True)
class WorkCost:
    """The cost of one piece of the demo's work, from its stored usage records."""

    records: tuple[StoredUsage, ...]
    cost: float
    idle: float
    cpu_hours: float
    replica_hours: float
    predictions: int

    @property
    def per_1000_predictions(self) -> float | None:
        return self.cost / self.predictions * 1000 if self.predictions else None


def work_cost(records: list[StoredUsage], prices: PriceSheet) -> WorkCost:
    """Price ``records`` (those inside another record are left out, as the report does)."""
    counted = tuple(r for r in records if not r.usage.within)
    charges: list[Charge] = [prices.charge(r.usage) for r in counted]
    return WorkCost(
        records=counted,
        cost=sum(c.total for c in charges),
        idle=sum(c.idle for c in charges),
        cpu_hours=sum(Quantities.of(r.usage).cpu_billed for r in counted),
        replica_hours=sum(r.usage.replica_hours for r in counted if r.usage.kind == "deployment"),
        predictions=sum(r.usage.predictions for r in counted if r.usage.kind == "deployment"),
    )  # fmt: skip


def demo_costs(platform: Platform, pipeline_run: str, deployment: str) -> tuple[WorkCost, WorkCost]:
    """The cost of the pipeline run ``pipeline_run`` and of ``deployment`` so far."""
    prices = PriceSheet.from_settings(platform.settings.cost)
    steps = list_usage(platform, kind="pipeline_step", parent=pipeline_run)
    served = list_usage(platform, kind="deployment", deployment=deployment)
    return work_cost(steps, prices), work_cost(served, prices)


def show_costs(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    """The stage: one line with the champion pipeline's cost and the deployment's."""
    champion = need(state.champion, "the champion (its pipeline run)")
    served = need(state.served, "the served champion (its deployment)")
    pipeline, deployment = demo_costs(env.platform, champion.pipeline_run, served.deployment)
    currency = env.platform.settings.cost.currency
    per_1000 = deployment.per_1000_predictions
    line = (
        f"pipeline {champion.pipeline_run[:12]}: {len(pipeline.records)} step records, "
        f"{pipeline.cpu_hours:.4f} CPU-h, {pipeline.cost:.6f} {currency} "
        f"(idle {pipeline.idle:.6f}); deployment {served.deployment}: "
        f"{deployment.replica_hours:.4f} replica-h, {deployment.predictions:,} predictions, "
        f"{deployment.cost:.6f} {currency} (idle {deployment.idle:.6f}), "
        + (f"{per_1000:.6f} {currency} per 1,000 predictions" if per_1000 is not None else
           "no predictions recorded yet")
    )  # fmt: skip
    return state, line
