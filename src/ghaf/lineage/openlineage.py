"""OpenLineage RunEvents for ingests and transforms, to a JSON-lines file or an HTTP endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ghaf.errors import BackendUnavailableError
from ghaf.logs import get_logger
from ghaf.settings import GhafSettings

PRODUCER = "https://github.com/ghaf-mlops/ghaf"
_log = get_logger(__name__)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as OpenLineage names it, with optional schema fields (name, type)."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()


def build_run_event(
    job: str,
    *,
    namespace: str,
    inputs: Sequence[DatasetRef],
    outputs: Sequence[DatasetRef],
    state: str = "COMPLETE",
    run_id: str | None = None,
    code: str | None = None,
) -> Any:
    """Build an ``openlineage.client`` RunEvent (2-0-2 spec)."""
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import schema_dataset, source_code_job

    def facets(ref: DatasetRef) -> dict[str, Any]:
        if not ref.fields:
            return {}
        fields = [schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in ref.fields]
        return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields)}

    job_facets: dict[str, Any] = {}
    if code is not None:
        job_facets["sourceCode"] = source_code_job.SourceCodeJobFacet(
            language="sql" if job.startswith("transform.sql") else "python", sourceCode=code
        )
    return RunEvent(
        eventType=RunState[state],
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=run_id or str(uuid.uuid4())),
        job=Job(namespace=namespace, name=job, facets=job_facets),
        inputs=[InputDataset(namespace=r.namespace, name=r.name, facets=facets(r)) for r in inputs],
        outputs=[
            OutputDataset(namespace=r.namespace, name=r.name, facets=facets(r)) for r in outputs
        ],
        producer=PRODUCER,
    )


def event_json(event: Any) -> str:
    """The event as one line of JSON."""
    from openlineage.client.serde import Serde

    return str(Serde.to_json(event))


class LineageSink:
    """Sends RunEvents where ``settings.lineage_url`` says: a file (default), HTTP, or off."""

    def __init__(self, settings: GhafSettings) -> None:
        url = settings.lineage_url
        self.url = url
        self.path: Path | None = None
        if url is None:
            self.path = settings.home / "lineage" / "openlineage.jsonl"
        elif url.startswith("file://"):
            self.path = Path(url.removeprefix("file://"))
        elif url != "off" and not url.startswith(("http://", "https://")):
            self.path = Path(url)

    def send(self, event: Any) -> None:
        """Append to the file or POST to the endpoint; HTTP failures are logged, not raised.

        The dataset version is already committed when events are sent; losing the
        event must not undo it, so a failed POST is a warning (the file sink cannot fail
        silently: an unwritable file raises).
        """
        line = event_json(event)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        elif self.url and self.url != "off":
            try:
                self._post(self.url, line)
            except BackendUnavailableError as exc:
                _log.warning("openlineage.post_failed", url=self.url, error=exc.headline)

    @staticmethod
    def _post(url: str, body: str) -> None:
        import httpx

        endpoint = (
            url if url.rstrip("/").endswith("/lineage") else url.rstrip("/") + "/api/v1/lineage"
        )
        try:
            response = httpx.post(
                endpoint,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=5.0,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"OpenLineage endpoint {endpoint} failed: {exc}") from exc
