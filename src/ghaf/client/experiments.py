"""The remote client's calls for A/B experiments, label imports, and model-server feedback."""

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
