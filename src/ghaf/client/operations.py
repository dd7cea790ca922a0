"""The remote client's calls for deployments, monitoring profiles and drift checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ghaf.client.files import _chunks
from ghaf.client.session import Session
from ghaf.errors import InvalidInputError

_PARQUET = {"content-type": "application/octet-stream"}


class OperationsCalls(Session):
    """Deployment, monitoring and drift calls of :class:`~ghaf.client.http.Client`."""

    def deployments(self, project: str | None = None) -> list[dict[str, Any]]:
        """The deployments of your projects (of ``project`` only, if given)."""
        return list(self.get("/deployments", project=project)["deployments"])

    def deployment(self, name: str) -> dict[str, Any]:
        return dict(self.get(f"/deployments/{name}"))

    def create_deployment(
        self,
        name: str,
        models: Mapping[str, float] | Sequence[str],
        *,
        project: str,
        shadow: str | None = None,
    ) -> dict[str, Any]:
        """Record a deployment of ``models`` (refs -> traffic weights, or a list: equal
        weights); each version must meet the project's release policy."""
        weights = dict(models) if isinstance(models, Mapping) else dict.fromkeys(models, 1.0)
        body = {"name": name, "project": project, "models": weights, "shadow": shadow}
        return dict(self.post("/deployments", body))

    def update_deployment(
        self,
        name: str,
        *,
        models: Mapping[str, float] | Sequence[str] | None = None,
        shadow: str | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Change a deployment's models and weights, shadow (``""`` removes it) or status."""
        body: dict[str, Any] = {"shadow": shadow, "status": status}
        if models is not None:
            body["models"] = (
                dict(models) if isinstance(models, Mapping) else dict.fromkeys(models, 1.0)
            )
        return dict(self.request("PATCH", f"/deployments/{name}", json=body))

    def profiles(self, name: str | None = None) -> list[dict[str, Any]]:
        """Stored profile versions of your projects (of ``name`` only, if given)."""
        return list(self.get("/profiles", name=name)["profiles"])

    def profile(self, ref: str) -> dict[str, Any]:
        """A stored profile: ``NAME`` (the latest version) or ``NAME@V``."""
        return dict(self.get(f"/profiles/{ref}"))

    def save_profile(
        self,
        name: str,
        *,
        project: str,
        dataset: str | None = None,
        path: str | Path | None = None,
        columns: Sequence[str] | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Profile a dataset of ``project`` (``dataset="NAME:V"``) or a local Parquet file
        (``path``, sent to the server) and store it as the next version of ``name``."""
        if (dataset is None) == (path is None):
            raise InvalidInputError(
                "a profile is made of a dataset or a file", hint="pass dataset= or path="
            )
        if dataset is not None:
            body = {"name": name, "dataset": dataset, "columns": list(columns) if columns else None}
            return dict(self.post(f"/projects/{project}/profiles", body))
        file = Path(str(path))
        response = self.send(
            "POST",
            f"/projects/{project}/profiles/{name}/data",
            content=lambda: _chunks(file),
            params={"columns": list(columns or ()), "source": source or str(path)},
            headers=_PARQUET,
        )
        return dict(response.json())

    def check_drift(
        self,
        reference: str,
        current: str | Path,
        *,
        columns: Sequence[str] | None = None,
        alpha: float = 0.05,
        domain_classifier: bool = True,
        histograms: bool = False,
        current_name: str | None = None,
    ) -> dict[str, Any]:
        """The drift report of ``current`` against ``reference`` (a dict, as
        :meth:`~ghaf.monitoring.DriftReport.to_dict` makes it).

        ``reference``: ``profile:NAME[@V]`` or a dataset ``NAME:V`` on the server;
        ``current``: the same, or a local Parquet file (a :class:`~pathlib.Path`), which is
        sent to the server and not kept there.
        """
        if isinstance(current, Path):
            response = self.send(
                "POST",
                "/drift/batch",
                content=lambda: _chunks(current),
                params={
                    "reference": reference,
                    "columns": list(columns or ()),
                    "alpha": alpha,
                    "domain_classifier": domain_classifier,
                    "histograms": histograms,
                    "current_name": current_name or str(current),
                },
                headers=_PARQUET,
            )
            return dict(response.json())
        body = {
            "reference": reference,
            "current": current,
            "columns": list(columns) if columns else None,
            "alpha": alpha,
            "domain_classifier": domain_classifier,
            "histograms": histograms,
        }
        return dict(self.post("/drift", body))
