"""Registry records as callers see them, model references and the lifecycle's stages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ghaf.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

Stage = Literal["candidate", "staging", "production", "archived"]
STAGES: tuple[Stage, ...] = ("candidate", "staging", "production", "archived")
NEXT_STAGES: dict[str, frozenset[str]] = {
    "candidate": frozenset({"staging", "archived"}),
    "staging": frozenset({"production", "archived"}),
    "production": frozenset({"archived"}),
    "archived": frozenset({"staging"}),
}
"""The lifecycle: candidate → staging → production → archived (archived may come back)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``name:3``, ``name@champion``, ``name`` or ``name:latest``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"model name {name!r} is invalid",
            hint="use letters, digits, '.', '_' or '-' (up to 256), starting with one of them",
        )
    return name


def check_alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise InvalidInputError(
            f"alias {alias!r} is invalid",
            hint="start with a letter or '_', then letters, digits, '_' or '-', e.g. champion",
        )
    return alias


def parse_ref(ref: str) -> ModelRef:
    """Parse ``name:3``, ``name@alias``, ``name:latest`` or ``name``."""
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return ModelRef(check_name(name), alias=check_alias(alias))
    if ":" in ref:
        name, _, version = ref.rpartition(":")
        if version == "latest":
            return ModelRef(check_name(name))
        if not version.isdigit() or int(version) < 1:
            raise InvalidInputError(
                f"model reference {ref!r} has an invalid version {version!r}",
                hint="use NAME:3, NAME@alias, NAME:latest or NAME",
            )
        return ModelRef(check_name(name), version=int(version))
    return ModelRef(check_name(ref))


@dataclass(frozen=True)
class Approval:
    """An approval of a version: who, with which credential, and any evidence flags."""

    approver: str
    credential: str | None = None
    flags: tuple[str, ...] = ()
    comment: str = ""


SUMMARY_FIELDS: tuple[str, ...] = (
    "name",
    "version",
    "project",
    "stage",
    "flavor",
    "aliases",
    "approvals",
    "signed",
    "run_id",
    "created_by",
    "created_at",
)
"""What a listing of versions shows of each (``ghaf models show``, the API's version lists)."""


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version."""

    name: str
    version: int
    flavor: str
    stage: str
    project: str
    source: str
    run_id: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    description: str
    signature: dict[str, Any]
    """``{"inputs": schema JSON, "outputs": schema JSON}`` (see ``ghaf.models.base``)."""
    example_digest: str | None
    metrics: dict[str, float]
    files: dict[str, dict[str, Any]]
    """Relative path -> ``{"digest": sha256, "size": bytes}``."""
    signed: bool
    lineage: list[str]
    card: str
    aliases: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    approval_records: tuple[Approval, ...] = ()
    author_credential: str | None = None
    author_minted_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def node(self) -> str:
        """This version's lineage node id."""
        return f"model:{self.name}:{self.version}"

    def input_schema(self) -> pa.Schema | None:
        """The Arrow schema inputs must have, when the version has a signature."""
        from ghaf.models.base import schema_from_json

        body = self.signature.get("inputs")
        return None if body is None else schema_from_json(body)

    def output_schema(self) -> pa.Schema | None:
        from ghaf.models.base import schema_from_json

        body = self.signature.get("outputs")
        return None if body is None else schema_from_json(body)
