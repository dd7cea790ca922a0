"""What a model signature is for: the release manifest signed along with the files.

A model-signing bundle alone says "these bytes", not "these bytes are fraud:1 of project
risk": a registry row edited to point ``fraud:1`` at ``fraud:2``'s files and signature
would still verify. So registration writes ``ghaf-release.json`` into the model
directory before signing it, and the bundle covers it like any other file (the public
``model_signing verify`` still accepts the directory, and cannot be fooled about it)::

    {"format": "ghaf-release/1", "model": "fraud", "version": 1, "project": "risk",
     "files": {"ghaf-model.json": "<sha256>", "model.skops": "<sha256>"}}

Every loader compares it with what it was asked to load (:func:`check_release`):
model, version, project and each file's SHA-256, like the subject list of a DSSE
statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghaf.errors import IntegrityError

RELEASE_FILE = "ghaf-release.json"
FORMAT = "ghaf-release/1"
_HINT = "do not load it; re-register the model from a trusted source"


@dataclass(frozen=True)
class Release:
    """A model version's identity and its files' SHA-256 digests (path -> hex digest)."""

    model: str
    version: int
    project: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    def describe(self) -> str:
        return f"{self.ref} in project {self.project!r}"

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "model": self.model,
            "version": self.version,
            "project": self.project,
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(body, indent=1, sort_keys=True).encode() + b"\n"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.to_bytes())
        return body

    def write(self, directory: Path) -> Path:
        """Write (or overwrite) the manifest in ``directory``; sign the directory after."""
        target = directory / RELEASE_FILE
        target.write_bytes(self.to_bytes())
        return target

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> Release:
        """Parse a manifest strictly: an unknown format or a wrong field type is refused.

        Raises:
            IntegrityError: naming the field that is wrong.
        """
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{source} is not JSON: {exc}", hint=_HINT) from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise IntegrityError(f"{source}: format is not {FORMAT!r}", hint=_HINT)
        model, version = body.get("model"), body.get("version")
        project, files = body.get("project"), body.get("files")
        problems = []
        if not isinstance(model, str) or not model:
            problems.append("model is not a name")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            problems.append("version is not a positive integer")
        if not isinstance(project, str) or not project:
            problems.append("project is not a name")
        digests: dict[str, str] = {}
        if isinstance(files, dict):
            digests = {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}
        if not isinstance(files, dict) or len(digests) != len(files):
            problems.append("files is not a map of path to SHA-256")
        if problems:
            raise IntegrityError(f"{source}: {'; '.join(problems)}", hint=_HINT)
        return cls(str(model), int(str(version)), str(project), digests)

    @classmethod
    def read(cls, directory: Path) -> Release | None:
        """The manifest in ``directory``, or None when it has none."""
        path = directory / RELEASE_FILE
        if not path.is_file():
            return None
        return cls.from_bytes(path.read_bytes(), f"{RELEASE_FILE} of {directory}")


def check_signed_digests(release: Release, signed: Mapping[str, str], directory: Path) -> None:
    """The manifest must list exactly the files the signature covers, with their digests.

    A trusted key could sign a manifest that lies about the files beside it (a bug, or an
    insider): it is refused rather than believed.

    Raises:
        IntegrityError: naming each file whose digest differs, is missing or is extra.
    """
    others = {path: digest for path, digest in signed.items() if path != RELEASE_FILE}
    diff = _digest_diff(release.files, others, "release manifest", "signature")
    if diff:
        raise IntegrityError(
            f"{RELEASE_FILE} in {directory} does not match the signed files: {diff}",
            hint=_HINT,
        )


def check_release(
    claimed: Release | None,
    *,
    model: str,
    version: int | str,
    project: str | None,
    files: Mapping[str, str] | None = None,
) -> Release:
    """Refuse files signed for another model, version or project, or other bytes.

    Args:
        claimed: the verified directory's manifest (None: the signature names no release).
        project: None only for a directory given on the command line (no registry to ask).
        files: the registry's path -> SHA-256 for the version (None: not compared).

    Raises:
        IntegrityError: headline ``fraud:1 refused: ...`` naming what was asked for and
            what the signature is for (both refs, both projects, each differing digest).
    """
    asked = f"{model}:{version}"
    if claimed is None:
        raise IntegrityError(
            f"{asked} refused: its signature names no release ({RELEASE_FILE} is missing), "
            "so it does not say which model, version and project it is for",
            hint="re-register the model (registration signs what the version is for)",
        )
    problems = []
    if (claimed.model, str(claimed.version)) != (model, str(version)):
        problems.append(f"its files are signed for {claimed.ref}, not {asked}")
    if project is not None and claimed.project != project:
        problems.append(f"signed for project {claimed.project!r}, not {project!r}")
    if files is not None:
        diff = _digest_diff(files, claimed.files, "registry", "signed release")
        if diff:
            problems.append(f"file digests differ from the signed ones: {diff}")
    if problems:
        raise IntegrityError(
            f"{asked} refused: {'; '.join(problems)}",
            hint="the registry entry points at files signed for another release; " + _HINT,
        )
    return claimed


def _digest_diff(left: Mapping[str, str], right: Mapping[str, str], lname: str, rname: str) -> str:
    parts = []
    for path in sorted(set(left) | set(right)):
        a, b = left.get(path), right.get(path)
        if a == b:
            continue
        if a is None:
            parts.append(f"{path} (only in the {rname})")
        elif b is None:
            parts.append(f"{path} (only in the {lname})")
        else:
            parts.append(f"{path} ({lname} {a[:12]}, {rname} {b[:12]})")
    return ", ".join(parts)
