"""The remote client's calls for pipelines: submit, status, logs, cancel, triggers' runs,
and what a worker elsewhere reports."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ghaf.client.session import Session
from ghaf.errors import BackendUnavailableError

ENDED = frozenset({"succeeded", "failed", "cancelled"})
"""A run's statuses once it has ended."""


class PipelineCalls(Session):
    """Pipelines calls of :class:`~ghaf.client.http.Client`."""

    def pipelines(self) -> list[dict[str, Any]]:
        """The pipelines the server runs: target, name, description, params, steps."""
        return list(self.get("/pipelines")["pipelines"])

    def submit_pipeline(
        self,
        pipeline: str,
        *,
        project: str,
        params: Mapping[str, Any] | None = None,
        executor: str = "server",
    ) -> dict[str, Any]:
        """Start a run of ``pipeline`` (``MODULE:ATTRIBUTE``, one the server declares) in
        ``project``; the run as recorded (it goes on: :meth:`wait_pipeline_run`)."""
        body = {
            "pipeline": pipeline,
            "project": project,
            "params": dict(params or {}),
            "executor": executor,
        }
        return dict(self.post("/pipeline-runs", body))

    def pipeline_run(self, run_id: str) -> dict[str, Any]:
        """A run with its steps (``run_id``: the id or 8 or more of its first digits)."""
        return dict(self.get(f"/pipeline-runs/{run_id}"))

    def pipeline_runs(
        self,
        pipeline: str | None = None,
        *,
        limit: int = 20,
        trigger: str | None = None,
        fired: bool = False,
    ) -> list[dict[str, Any]]:
        """Runs of the caller's projects, newest first; ``fired``: only runs triggers started."""
        found = self.get(
            "/pipeline-runs",
            pipeline=pipeline,
            limit=limit,
            trigger=trigger,
            fired="true" if fired else None,
        )
        return list(found["runs"])

    def wait_pipeline_run(
        self, run_id: str, *, timeout: float = 3600.0, interval: float = 0.5
    ) -> dict[str, Any]:
        """Poll a run until it has ended (at most ``timeout`` seconds); the ended run.

        Raises:
            BackendUnavailableError: it is still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            run = self.pipeline_run(run_id)
            if run["status"] in ENDED:
                return run
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"pipeline run {run_id} is still {run['status']} after {timeout:g}s",
                    hint="wait longer, or cancel it",
                )
            time.sleep(interval)

    def pipeline_log(self, run_id: str, step: str) -> str:
        """Everything a step printed (fetched page by page)."""
        data = bytearray()
        offset: int | None = 0
        while offset is not None:
            response = self.send(
                "GET", f"/pipeline-runs/{run_id}/steps/{step}/log", params={"offset": offset}
            )
            data += response.content
            following = response.headers.get("x-ghaf-next-offset")
            offset = int(following) if following is not None else None
        return data.decode(errors="replace")

    def cancel_pipeline_run(self, run_id: str) -> dict[str, Any]:
        """Record a running run cancelled (the server stops its steps); the run."""
        return dict(self.post(f"/pipeline-runs/{run_id}/cancel", {}))

    def report_pipeline_step(self, run_id: str, step: str, **report: Any) -> dict[str, Any]:
        """A worker's report of a step of an ``external`` run: ``status`` and optionally
        ``attempts``, ``error``, ``output_digest`` with ``output_kind``, ``log_digest``,
        ``cpu_s``, ``max_rss_mb`` (files uploaded to the run's project first)."""
        return dict(self.post(f"/pipeline-runs/{run_id}/steps/{step}", report))

    def finish_pipeline_run(
        self, run_id: str, status: str, error: str | None = None
    ) -> dict[str, Any]:
        """End an ``external`` run: ``succeeded``, ``failed`` or ``cancelled``."""
        return dict(
            self.post(f"/pipeline-runs/{run_id}/finish", {"status": status, "error": error})
        )
