"""The remote client's calls for A/B experiments, canaries, label imports and feedback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ghaf.client.session import Session


class ExperimentCalls(Session):
    """Experiment calls of :class:`~ghaf.client.http.Client` (the control plane's)."""

    def experiments(self, project: str | None = None) -> list[dict[str, Any]]:
        """The experiments of your projects (of ``project`` only, if given)."""
        return list(self.get("/traffic/experiments", project=project)["experiments"])

    def experiment_status(self, name: str) -> dict[str, Any]:
        """The record and an interim analysis (``analysis``; ``analysis_error`` if none)."""
        return dict(self.get(f"/traffic/experiments/{name}"))

    def create_experiment(
        self,
        name: str,
        deployment: str,
        variants: Mapping[str, float],
        *,
        project: str,
        goal: str = "outcome",
        guardrails: Sequence[str] = ("latency_ms:lower",),
        holdout: float = 0.0,
        unit: str = "header",
        shadows: Sequence[str] = (),
        control: str | None = None,
    ) -> dict[str, Any]:
        """Record a draft experiment on ``deployment`` (variants: ``NAME:V`` -> weight)."""
        body = {
            "name": name,
            "project": project,
            "deployment": deployment,
            "variants": dict(variants),
            "control": control,
            "goal": goal,
            "guardrails": list(guardrails),
            "holdout": holdout,
            "unit": unit,
            "shadows": list(shadows),
        }
        return dict(self.post("/traffic/experiments", body))

    def start_experiment(self, name: str) -> dict[str, Any]:
        return dict(self.post(f"/traffic/experiments/{name}/start", {}))

    def stop_experiment(self, name: str) -> dict[str, Any]:
        return dict(self.post(f"/traffic/experiments/{name}/stop", {}))

    def decide_experiment(self, name: str) -> dict[str, Any]:
        """Judge a stopped experiment; the record with its decision."""
        return dict(self.post(f"/traffic/experiments/{name}/decide", {}))

    def import_outcomes(self, model: str, dataset: str, *, project: str) -> int:
        """Store a dataset version's labels as outcomes of ``model``; how many."""
        body = {"model": model, "dataset": dataset, "project": project}
        return int(self.post("/outcomes/import", body)["stored"])

    # Canaries ----------------------------------------------------------------------

    def canaries(self, project: str | None = None) -> list[dict[str, Any]]:
        """The canaries of your projects (of ``project`` only, if given)."""
        return list(self.get("/traffic/canaries", project=project)["canaries"])

    def canary_status(self, name: str, *, decisions: int = 20) -> dict[str, Any]:
        """``canary``, its ``deployment``'s weights now, its latest ``decisions``."""
        return dict(self.get(f"/traffic/canaries/{name}", decisions=decisions))

    def start_canary(
        self,
        name: str,
        deployment: str,
        candidate: str,
        plan: Mapping[str, Any] | None = None,
        *,
        project: str,
        champion: str | None = None,
    ) -> dict[str, Any]:
        """Ramp ``candidate`` (``NAME:V``) against the champion on ``deployment`` by
        ``plan`` (see :class:`ghaf.experiments.rollout.RolloutPlan`); the canary."""
        body = {
            "name": name,
            "project": project,
            "deployment": deployment,
            "candidate": candidate,
            "champion": champion,
            "plan": dict(plan or {}),
        }
        return dict(self.post("/traffic/canaries", body))

    def evaluate_canary(self, name: str) -> dict[str, Any]:
        """Judge one window of evidence and act on it; the decision."""
        return dict(self.post(f"/traffic/canaries/{name}/evaluate", {}))

    def pause_canary(self, name: str, reason: str) -> dict[str, Any]:
        return dict(self.post(f"/traffic/canaries/{name}/pause", {"reason": reason}))

    def resume_canary(self, name: str) -> dict[str, Any]:
        return dict(self.post(f"/traffic/canaries/{name}/resume", {}))

    def rollback_canary(self, name: str, reason: str) -> dict[str, Any]:
        """Give every request back to the champion now; the decision."""
        return dict(self.post(f"/traffic/canaries/{name}/rollback", {"reason": reason}))


def send_feedback(
    url: str,
    model: str,
    outcomes: Sequence[Mapping[str, Any]],
    *,
    token: str,
    timeout: float = 30.0,
    verify: Any = True,
) -> int:
    """Report outcomes to a model server (``ghaf serve``): ``POST URL/v2/feedback``.

    Each outcome: ``request_id`` or ``unit``, ``outcome`` (a number), optional
    ``timestamp`` and ``metric``. Returns how many were stored.

    Raises:
        httpx.HTTPStatusError: the server refused them (the body names the field).
    """
    reply = httpx.post(
        f"{url.rstrip('/')}/v2/feedback",
        json={"model": model, "outcomes": [dict(o) for o in outcomes]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        verify=verify,
    )
    reply.raise_for_status()
    return int(reply.json()["stored"])
