"""Fair share between projects: start-time fair queuing over per-project passes.

Each project has a pass; dispatching one of its jobs advances the pass by ``1 / weight``,
and the project with the lowest pass goes next, so while several projects have work
waiting their dispatches follow their weights (3:1 weights give three of every four
dispatches to the first). A project's pass never lags the virtual time (the pass of the
last dispatch): a project that had nothing waiting cannot bank the turns it skipped and
then take every slot when its work arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class FairShare:
    """The passes of the projects and the virtual time; :meth:`pick` decides, :meth:`charge`
    records a dispatch."""

    passes: dict[str, float] = field(default_factory=dict)
    virtual_time: float = 0.0

    def effective(self, project: str) -> float:
        """Where ``project`` stands: its pass, caught up to the virtual time."""
        return max(self.passes.get(project, 0.0), self.virtual_time)

    def pick(self, eligible: Mapping[str, float]) -> str | None:
        """The project to dispatch next among ``eligible`` (project -> weight); ties go
        to the name first in order, so the choice is the same in every process."""
        if not eligible:
            return None
        return min(eligible, key=lambda p: (self.effective(p), p))

    def charge(self, project: str, weight: float) -> None:
        """Record one dispatch of ``project``'s work."""
        start = self.effective(project)
        self.passes[project] = start + 1.0 / weight
        self.virtual_time = start


def dispatch_order(
    share: FairShare, waiting: Mapping[str, int], weights: Mapping[str, float]
) -> list[str]:
    """The projects of the next ``sum(waiting)`` dispatches if nothing else arrived:
    what ``ghaf jobs list`` shows as each queued job's position (``share`` is not changed)."""
    simulated = FairShare(dict(share.passes), share.virtual_time)
    left = {p: n for p, n in waiting.items() if n > 0}
    order: list[str] = []
    while left:
        project = min(left, key=lambda p: (simulated.effective(p), p))  # as pick() does
        simulated.charge(project, weights.get(project, 1.0))
        order.append(project)
        left[project] -= 1
        if not left[project]:
            del left[project]
    return order
