"""The remote SDK's client: one session with the server and every area's calls.

Each area's calls are a mixin in ``ghaf.client.<area>`` over :class:`~ghaf.client.session.Session`
(which turns problem+json refusals into the errors embedded mode raises).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ghaf.client.data import DataCalls
from ghaf.client.experiments import ExperimentCalls
from ghaf.client.features import FeatureCalls
from ghaf.client.governance import GovernanceCalls
from ghaf.client.incidents import IncidentCalls
from ghaf.client.monitors import MonitorCalls
from ghaf.client.operations import OperationsCalls
from ghaf.client.pipelines import PipelineCalls
from ghaf.client.retraining import RetrainingCalls
from ghaf.client.session import Session
from ghaf.client.slo import SLOCalls
from ghaf.errors import ConfigError

__all__ = ["Client", "connect"]


class Client(
    DataCalls,
    FeatureCalls,
    PipelineCalls,
    OperationsCalls,
    GovernanceCalls,
    IncidentCalls,
    SLOCalls,
    MonitorCalls,
    ExperimentCalls,
    RetrainingCalls,
    Session,
):
    """A session with one server as one caller (``token``: a Ghaf token or an OIDC JWT),
    with the calls of every area."""

    def whoami(self) -> dict[str, Any]:
        """Who the server proved this client to be."""
        return dict(self.get("/whoami"))

    def projects(self) -> list[dict[str, Any]]:
        return list(self.get("/projects")["projects"])

    def models(self) -> list[dict[str, Any]]:
        return list(self.get("/models")["models"])

    def model_version(self, ref: str) -> dict[str, Any]:
        return dict(self.get(f"/models/{ref}"))

    def search_runs(
        self, filter: str | None = None, *, max_results: int = 100
    ) -> list[dict[str, Any]]:
        return list(self.get("/runs", filter=filter, max_results=max_results)["runs"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/runs/{run_id}"))

    def start_run(
        self,
        experiment: str,
        *,
        project: str,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        flush_interval: float | None = None,
    ) -> Any:
        """Start a run and return its :class:`~ghaf.client.tracking.RemoteRun`."""
        from ghaf.client.tracking import DEFAULT_FLUSH_INTERVAL, RemoteRun

        made = self.post(
            "/runs",
            {"experiment": experiment, "project": project, "name": name, "tags": dict(tags or {})},
        )
        interval = DEFAULT_FLUSH_INTERVAL if flush_interval is None else flush_interval
        return RemoteRun(self, made["run_id"], project, flush_interval=interval)

    def upload_file(self, path: str | Path, project: str, *, direct: bool = False) -> str:
        """Send one file to ``project``; its SHA-256, once the server stored exactly it.

        ``direct``: send it encrypted straight to the bucket through a presigned URL
        when the server offers them (artifacts on S3); else through the server.

        Raises:
            IntegrityError: the bytes the server received are not the file's (it changed
                while it was sent); nothing was stored.
        """
        from ghaf.client.files import upload_file

        return upload_file(self, Path(path), project, direct=direct)

    def register_model(
        self,
        name: str,
        directory: str | Path,
        *,
        project: str,
        description: str = "",
        lineage: list[str] | None = None,
        run_id: str | None = None,
        metrics: Mapping[str, float] | None = None,
        direct: bool = False,
    ) -> dict[str, Any]:
        """Register a saved model directory as a new version of ``name`` in ``project``.

        Each regular file is uploaded (a symlink or special file is refused here, before
        anything is sent), then the server registers them with every check of embedded
        mode. Returns the version as ``model_version`` shows it.
        """
        from ghaf.client.files import register_model

        return register_model(
            self,
            name,
            Path(directory),
            project=project,
            description=description,
            lineage=lineage or [],
            run_id=run_id,
            metrics=dict(metrics) if metrics is not None else None,
            direct=direct,
        )

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        """Point ``name@alias`` at ``version`` (a protected alias needs what the release
        policy asks); the version's summary."""
        return dict(self.put(f"/models/{name}/aliases/{alias}", {"version": version}))

    def approve_model_version(self, ref: str, *, comment: str = "") -> dict[str, Any]:
        """Approve ``ref`` (never as its author or trainer); the version's summary."""
        return dict(self.post(f"/models/{ref}/approvals", {"comment": comment}))

    def transition_model_version(self, ref: str, stage: str) -> dict[str, Any]:
        """Move ``ref`` to ``stage`` (staging, production, archived); its summary."""
        return dict(self.post(f"/models/{ref}/stage", {"stage": stage}))

    def download_model(self, ref: str, dest: str | Path, *, direct: bool = False) -> Path:
        """Write the files of the version ``ref`` names into ``dest``, each one checked
        against its SHA-256 before it appears under its name; returns ``dest``.

        ``direct``: fetch each file from the bucket through a presigned URL and decrypt
        it here, when the server offers them (artifacts on S3); else through the server.
        """
        from ghaf.client.files import download_model

        return download_model(self, ref, Path(dest), direct=direct)

    def download_run_artifacts(
        self, run_id: str, path: str, dest: str | Path, *, direct: bool = False
    ) -> Path:
        """Fetch a run's artifact file, or every file under directory ``path``, into
        ``dest``, each checked against its SHA-256; the local path of ``path``."""
        from ghaf.client.files import download_run_artifacts

        return download_run_artifacts(self, run_id, path, Path(dest), direct=direct)

    def __enter__(self) -> Client:
        return self


def connect(
    url: str | None = None,
    *,
    token: str | None = None,
    home: str | Path | None = None,
    **options: Any,
) -> Client:
    """A client of the server at ``url`` (default ``GHAF_URL``) with ``token`` (default
    ``GHAF_TOKEN``); with no server named, the same client over the home ``home``
    (default ``GHAF_HOME``) in this process, acting as its OS owner, or as ``token``'s
    principal when one is given. ``options`` are :class:`Client`'s (``timeout``,
    ``verify``, ``resumable_above``).

    Raises:
        ConfigError: a server with no token, or both a server and a home.
        PermissionDeniedError: embedded, no token, and this account does not own the home.
    """
    url = url or os.environ.get("GHAF_URL")
    token = token or os.environ.get("GHAF_TOKEN")
    if url and home is not None:
        raise ConfigError(
            f"both a server ({url}) and a home ({home}) were named",
            hint="pass url= for a server or home= for a home on this machine, not both",
        )
    if not url:
        from ghaf.client.local import LOCAL_URL, connect_home

        transport, credential = connect_home(home, token=token)
        return Client(LOCAL_URL, credential, transport=transport, **options)
    if not token:
        raise ConfigError("no credential for the server", hint="pass token= or set GHAF_TOKEN")
    return Client(url, token, **options)
