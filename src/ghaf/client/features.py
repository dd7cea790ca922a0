"""The remote client's feature calls: definitions, materialization, historical
retrieval (training sets).

Materializations and retrievals run on the server as jobs; these calls wait for them
(polling with a growing interval, up to ``timeout``) unless ``wait=False``, and raise
the error a failed job names, as embedded mode would have raised it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import orjson

from ghaf.client.session import Session, error_from
from ghaf.errors import BackendUnavailableError, IntegrityError

if TYPE_CHECKING:
    from ghaf.client.http import Client

DIGEST_HEADER = "x-ghaf-sha256"
JOB_TIMEOUT = 3600.0
"""Seconds a call waits for its job by default."""
_DONE = frozenset({"succeeded", "failed", "interrupted"})


class FeatureCalls(Session):
    """Features calls of :class:`~ghaf.client.http.Client`."""

    def feature_definitions(
        self, kind: str | None = None, *, project: str | None = None
    ) -> list[dict[str, Any]]:
        """The latest version of every definition you may read (of ``kind``, of
        ``project``)."""
        found = self.get("/features/definitions", kind=kind, project=project)
        return list(found["definitions"])

    def feature_view(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A feature view (latest or ``version``) and its last materializations."""
        return dict(self.get(f"/features/views/{name}", version=version))

    def feature_entity(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/features/entities/{name}"))

    def feature_service(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/features/services/{name}"))

    def apply_features(
        self,
        definitions: Mapping[str, Any],
        *,
        force: bool = False,
        dry_run: bool = False,
        source: str = "http",
        project: str | None = None,
    ) -> dict[str, Any]:
        """Apply ``definitions`` (a definitions YAML document: ``entities``,
        ``feature_views``, ``feature_services``) in ``project`` (default: the server's
        default project); the changes made (or, with ``dry_run``, that would be made)."""
        body = {"definitions": dict(definitions), "force": force, "dry_run": dry_run}
        if project is not None:
            body["project"] = project
        return dict(self.post("/features/definitions", {**body, "source": source}))

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        until: datetime | None = None,
        full: bool = False,
        wait: bool = True,
        timeout: float = JOB_TIMEOUT,
        project: str | None = None,
    ) -> dict[str, Any]:
        """Materialize ``views`` (default: all of ``project``'s) into the online store; the
        job (with its ``result`` once ``wait`` saw it succeed)."""
        body = {
            "views": list(views) if views else None,
            "until": until.isoformat() if until is not None else None,
            "full": full,
        }
        if project is not None:
            body["project"] = project
        job = dict(self.post("/features/materializations", body))
        return self.wait_for_job(job["id"], timeout=timeout) if wait else job

    def retrieve(
        self,
        name: str,
        *,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        entities: str | Path | None = None,
        entity_dataset: str | None = None,
        project: str | None = None,
        timestamp_column: str = "event_ts",
        full_feature_names: bool = False,
        wait: bool = True,
        timeout: float = JOB_TIMEOUT,
    ) -> dict[str, Any]:
        """Point-in-time features for entity rows, saved as the training set ``name``.

        Args:
            entities: a Parquet file of entity rows (uploaded to ``project`` first).
            entity_dataset: or a dataset (``NAME`` or ``NAME:V``) holding them.
            project: where the training set is saved (default: the features' project;
                an ``entities`` file needs it named).

        Returns:
            The job; once succeeded, ``result["training_set"]`` names the dataset version.
        """
        rows: dict[str, str] = {}
        if entities is not None:
            if project is None:
                raise ValueError("name the project an entities file is uploaded to")
            from ghaf.client.files import upload_file

            rows["upload"] = upload_file(cast("Client", self), Path(entities), project)
        if entity_dataset is not None:
            rows["dataset"] = entity_dataset
        body = {
            "name": name,
            "project": project,
            "features": list(features) if features is not None else None,
            "feature_service": feature_service,
            "entities": rows,
            "timestamp_column": timestamp_column,
            "full_feature_names": full_feature_names,
        }
        job = dict(self.post("/features/retrievals", body))
        return self.wait_for_job(job["id"], timeout=timeout) if wait else job

    def feature_job(self, job_id: str) -> dict[str, Any]:
        """A job as it stands: queued, running, succeeded, failed or interrupted."""
        return dict(self.get(f"/features/jobs/{job_id}"))

    def feature_jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest feature jobs of your projects, newest first."""
        return list(self.get("/features/jobs", limit=limit)["jobs"])

    def wait_for_job(self, job_id: str, *, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        """The job once it has succeeded.

        Raises:
            GhafError: the error a failed or interrupted job names (as embedded mode
                raises it).
            BackendUnavailableError: it is still running after ``timeout`` seconds (it
                goes on: ask again with :meth:`feature_job`).
        """
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            job = self.feature_job(job_id)
            if job["status"] in _DONE:
                break
            if time.monotonic() >= deadline:
                raise BackendUnavailableError(
                    f"job {job_id} is still {job['status']} after {timeout:g} s",
                    hint="it goes on on the server: ask again with feature_job(id)",
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)
        if job["status"] != "succeeded":
            problem = job["error"] or {"title": f"job {job_id} {job['status']}", "status": 500}
            raise error_from(httpx.Response(int(problem["status"]), content=orjson.dumps(problem)))
        return job

    def download_training_set(self, job_id: str, dest: str | Path) -> Path:
        """Write a retrieval job's training set (Parquet) to ``dest``, checked against its
        SHA-256 before it appears under that name; returns ``dest``."""
        target = Path(dest)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        partial = Path(name)
        hasher = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                response = self.send("GET", f"/features/jobs/{job_id}/result", stream=True)
                try:
                    for chunk in response.iter_bytes(1 << 20):
                        hasher.update(chunk)
                        out.write(chunk)
                finally:
                    response.close()
            if hasher.hexdigest() != response.headers.get(DIGEST_HEADER):
                raise IntegrityError(
                    f"the training set of job {job_id} arrived with sha256 "
                    f"{hasher.hexdigest()}, the server sent {response.headers.get(DIGEST_HEADER)}",
                    hint="download it again; nothing was written under its name",
                )
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target
