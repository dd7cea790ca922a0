"""Experiment records: what an A/B experiment on a deployment is, as the services return it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.experiments.tables import AbExperimentRow

STATES = ("draft", "running", "stopped", "decided")
TRANSITIONS = {"draft": ("running",), "running": ("stopped",), "stopped": ("decided",)}
"""draft -> running -> stopped -> decided; nothing goes back (start a new experiment)."""
UNIT_KINDS = ("header", "input", "parameter")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class UnitSource:
    """Where a request carries its unit: the ``x-ghaf-unit`` header, a named input, or a
    named request parameter (the header is read when the named field is absent)."""

    kind: str = "header"
    name: str = "x-ghaf-unit"

    @classmethod
    def parse(cls, text: str) -> UnitSource:
        """``header`` | ``header:NAME`` | ``input:NAME`` | ``parameter:NAME``."""
        kind, _, name = text.partition(":")
        if kind not in UNIT_KINDS or (kind != "header" and not name):
            raise InvalidInputError(
                f"unit {text!r} is not header, input:NAME or parameter:NAME",
                hint="e.g. --unit input:customer_id (or the default: the x-ghaf-unit header)",
            )
        if kind == "header" and name not in ("", "x-ghaf-unit"):
            raise InvalidInputError(
                f"unit header {name!r}: only the x-ghaf-unit header carries a unit",
                hint="send x-ghaf-unit, or name an input: --unit input:customer_id",
            )
        return cls(kind, name or "x-ghaf-unit")


@dataclass(frozen=True)
class Experiment:
    """An experiment: variants (concrete refs -> weights) on a deployment, its sticky
    assignment (salt, holdout, unit source), metrics, state and, once decided, the
    decision with every value it used."""

    name: str
    project: str
    deployment: str
    variants: dict[str, float]
    control: str
    shadows: list[str]
    holdout: float
    salt: str
    unit: UnitSource
    goal: str
    guardrails: list[str]
    status: str
    decision: dict[str, Any] | None
    revision: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    def routing(self) -> dict[str, Any]:
        """What serving needs to assign units (the deployment record carries it)."""
        return {
            "experiment": self.name,
            "salt": self.salt,
            "weights": self.variants,
            "holdout": self.holdout,
            "control": self.control,
            "unit": {"kind": self.unit.kind, "name": self.unit.name},
            "shadows": self.shadows,
        }


def check_experiment_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"experiment name {name!r} is invalid",
            hint="use letters, digits, '.', '_' or '-' (up to 128), starting with one of them",
        )
    return name


def to_record(row: AbExperimentRow) -> Experiment:
    return Experiment(
        name=row.name,
        project=row.project,
        deployment=row.deployment,
        variants=json.loads(row.variants),
        control=row.control,
        shadows=json.loads(row.shadows),
        holdout=row.holdout,
        salt=row.salt,
        unit=UnitSource(row.unit_kind, row.unit_name),
        goal=row.goal,
        guardrails=json.loads(row.guardrails),
        status=row.status,
        decision=json.loads(row.decision) if row.decision else None,
        revision=row.revision,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
    )
