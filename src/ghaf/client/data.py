"""The remote client's data calls: ingest (a URL or an upload), versions, validation,
diffs, previews, SQL transforms, lineage and OpenLineage.

Documents are the HTTP API's (``ghaf data ... --output json`` prints the same); errors
are embedded mode's (a missing dataset is a :class:`~ghaf.errors.NotFoundError`, a
failed contract check an :class:`~ghaf.errors.InvalidInputError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ghaf.client.session import Session
from ghaf.errors import InvalidInputError

if TYPE_CHECKING:
    from ghaf.client.http import Client

URL_SCHEMES = ("http://", "https://", "file://")
"""Sources the server fetches itself (within what its settings allow)."""


def contract_text(path: str | Path) -> dict[str, str]:
    """A contract file as an ingest or a validation sends it: its text and its name.

    Raises:
        InvalidInputError: the file cannot be read (naming it).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read contract {path}: {exc.strerror}", hint="check the path"
        ) from exc
    return {"text": text, "name": str(path)}


def local_file(source: str | Path) -> Path:
    """The local file ``source`` names, to be uploaded (as its absolute path).

    Raises:
        InvalidInputError: not a regular file, or a source only a home reads.
    """
    text = str(source)
    if text.startswith(("delta:", "iceberg:", "sql:")) or "://" in text:
        raise InvalidInputError(
            f"a server ingests an uploaded file or an http(s):// or file:// URL, not {text!r}",
            hint="ingest a .csv, .parquet or .jsonl file, or a URL; delta:, iceberg: and "
            "sql: sources run on a home (unset GHAF_URL)",
        )
    path = Path(text).expanduser().absolute()
    if not path.is_file():
        raise InvalidInputError(f"cannot read {path}: no such file", hint="check the path")
    return path


class DataCalls(Session):
    """Data calls of :class:`~ghaf.client.http.Client`."""

    def datasets(self) -> list[dict[str, Any]]:
        """The datasets of your projects: name, latest version, project."""
        return list(self.get("/datasets")["datasets"])

    def dataset_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of dataset ``name``, oldest first."""
        return list(self.get(f"/datasets/{name}/versions")["versions"])

    def dataset(self, ref: str) -> dict[str, Any]:
        """One version (``NAME`` for the latest, ``NAME:3``): schema, tags, profile."""
        return dict(self.get(f"/datasets/{ref}"))

    def diff_datasets(self, a: str, b: str) -> dict[str, Any]:
        """Schema and profile changes from version ``a`` to version ``b``."""
        return dict(self.get(f"/datasets/{a}/diff/{b}"))

    def preview_dataset(
        self, ref: str, *, limit: int = 20, columns: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The first ``limit`` rows (at most 1,000) of a version: ``columns`` and ``rows``."""
        return dict(
            self.get(f"/datasets/{ref}/rows", limit=limit, column=list(columns or ()) or None)
        )

    def validate_dataset(
        self, ref: str, contract: str | Path, *, format: str = "json"
    ) -> dict[str, Any] | str:
        """Check a stored version against a contract file; the report (``format="html"``:
        the HTML page). A failed check is in the report (``ok`` false), not an error."""
        sent = contract_text(contract)
        params = {"contract": sent["text"], "contract_name": sent["name"], "format": format}
        if format == "html":
            response = self.send("GET", f"/datasets/{ref}/validation", params=params)
            return response.text
        return dict(self.get(f"/datasets/{ref}/validation", **params))

    def ingest(
        self,
        source: str | Path,
        name: str,
        *,
        project: str,
        contract: str | Path | None = None,
        encoding: str = "utf-8",
    ) -> dict[str, Any]:
        """Ingest ``source`` as a new version of ``name`` in ``project``.

        A local file is uploaded first (streamed, digest-checked); an ``http(s)://`` or
        ``file://`` URL is fetched by the server, if its settings allow that URL.
        Returns the version as :meth:`dataset` shows it.

        Raises:
            InvalidInputError: unreadable or malformed data (naming file, line, column),
                a bad contract, or a failed error-severity check; nothing is stored.
        """
        body: dict[str, Any] = {"project": project, "encoding": encoding}
        if contract is not None:
            body["contract"] = contract_text(contract)
        if str(source).startswith(URL_SCHEMES):
            body["url"] = str(source)
        else:
            path = local_file(source)
            body["upload"] = {"digest": self._upload(path, project), "filename": str(path)}
        return dict(self.post(f"/datasets/{name}/ingest", body))

    def write_dataset(
        self,
        name: str,
        parquet: str | Path,
        *,
        project: str,
        source: str,
        inputs: Sequence[str] = (),
        column_tags: Mapping[str, str] | None = None,
        residency: str | None = None,
    ) -> dict[str, Any]:
        """Write a Parquet file as a new version of ``name``, with its lineage ``inputs``
        (``NAME:V`` or node ids), column tags and residency."""
        path = Path(parquet)
        body = {
            "project": project,
            "upload": {"digest": self._upload(path, project), "filename": str(path)},
            "source": source,
            "inputs": list(inputs),
            "column_tags": dict(column_tags or {}),
            "residency": residency,
        }
        return dict(self.post(f"/datasets/{name}/versions", body))

    def append_records(
        self,
        name: str,
        records: Sequence[Mapping[str, Any]],
        keys: Sequence[str],
        *,
        project: str,
        source: str = "http",
    ) -> dict[str, Any] | None:
        """Append records to ``name`` exactly once (a key the dataset holds is skipped,
        so a retry after a timeout adds nothing twice); the new version, or None."""
        body = {
            "project": project,
            "records": [dict(r) for r in records],
            "keys": list(keys),
            "source": source,
        }
        made = self.post(f"/datasets/{name}/records", body)["version"]
        return None if made is None else dict(made)

    def run_transform(
        self,
        output: str,
        inputs: Mapping[str, str],
        *,
        sql: str,
        project: str,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a SQL transform on the server: a new version of ``output`` in ``project``
        from ``inputs`` (alias -> dataset ref, each a view in ``sql``), ``params`` bound as
        ``$name``. The query reads its inputs and no file; a Python transform runs on a
        home only. Returns the version as :meth:`dataset` shows it.

        Raises:
            InvalidInputError: a bad alias or a failing query; nothing is stored.
            NotFoundError: an input you may not read (or that does not exist).
        """
        body = {
            "project": project,
            "inputs": dict(inputs),
            "sql": sql,
            "params": dict(params or {}),
        }
        return dict(self.post(f"/datasets/{output}/transform", body))

    def lineage(self, node: str) -> dict[str, Any]:
        """What ``node`` came from and what was made from it (your projects' nodes)."""
        return dict(self.get(f"/lineage/{node}"))

    def openlineage_events(
        self, *, project: str | None = None, dataset: str | None = None
    ) -> list[dict[str, Any]]:
        """The OpenLineage RunEvents of your projects' ingests and transforms."""
        found = self.request(
            "GET",
            "/openlineage/events",
            params={k: v for k, v in {"project": project, "dataset": dataset}.items() if v},
        )
        return list(found or [])

    def _upload(self, path: Path, project: str) -> str:
        from ghaf.client.files import upload_file

        return upload_file(cast("Client", self), path, project)
