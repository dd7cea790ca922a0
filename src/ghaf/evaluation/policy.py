"""Gate policies: a YAML file of rules, parsed with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ghaf.errors import ConfigError

EXAMPLE_POLICY = """\
name: production
metrics:                 # thresholds on evaluation metrics
  auc: {min: 0.75}
  brier: {max: 0.2}
fairness:                # bounds for every sensitive attribute (or ATTRIBUTE.MEASURE)
  demographic_parity_difference: {max: 0.1}
  equalized_odds_difference: {max: 0.2}
champion:                # beat the champion with confidence
  metric: auc
  min_improvement: 0.0
  confidence: 0.95
require:
  signature: true
  clean_scan: true
  approvals: 1
"""


class Bound(BaseModel):
    """``min`` and/or ``max`` for one value."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class ChampionRule(BaseModel):
    """The challenger's improvement interval must lie above ``min_improvement``."""

    model_config = ConfigDict(extra="forbid")
    metric: str = "auc"
    min_improvement: float = 0.0
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)
    allow_no_champion: bool = True


class Requirements(BaseModel):
    """Signature, clean pickle scan and a number of approvals."""

    model_config = ConfigDict(extra="forbid")
    signature: bool = False
    clean_scan: bool = False
    approvals: int = Field(default=0, ge=0)


class GatePolicy(BaseModel):
    """A gate: every rule must pass for a model version to go through."""

    model_config = ConfigDict(extra="forbid")
    name: str = "gate"
    metrics: dict[str, Bound] = Field(default_factory=dict)
    fairness: dict[str, Bound] = Field(default_factory=dict)
    champion: ChampionRule | None = None
    require: Requirements = Field(default_factory=Requirements)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """The line (when known) and what is wrong, from any YAML error.

    A character YAML refuses (a control character) raises a ``ReaderError``, which
    carries a position in the text rather than a mark.
    """
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return (mark.line + 1 if mark is not None else None), str(exc.problem or exc.context)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character
        shown = f"#x{code:04x}" if isinstance(code, int) else repr(code)
        return text.count("\n", 0, exc.position) + 1, f"character {shown}: {exc.reason}"
    return None, str(exc).splitlines()[0]


def parse_policy(text: str, source: str = "<policy>") -> GatePolicy:
    """Parse a policy's YAML text.

    Raises:
        ConfigError: naming ``source``, the line and the field that is wrong.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        body: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line, problem = _yaml_problem(exc, text)
        where = f"{source}:{line}" if line is not None else source
        raise ConfigError(
            f"{where}: not valid YAML: {problem}", hint="fix the YAML syntax at that line"
        ) from exc
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise ConfigError(f"{source}:1: a gate policy is a mapping", hint=_HINT)
    try:
        return GatePolicy.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        # Pydantic puts the model name in front of model-level validator errors.
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(node, loc)
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "unknown key"
        raise ConfigError(f"{source}:{line}: {field}: {reason}", hint=_HINT) from exc


_HINT = "see `ghaf gate example` for the policy format"


def read_policy_text(path: Path) -> str:
    """A policy file's text.

    Raises:
        ConfigError: the file cannot be read (naming it).
    """
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"cannot read gate policy {path}: {reason}", hint="pass the path of a YAML file"
        ) from exc


def load_policy(path: Path) -> GatePolicy:
    """Read and parse a policy file.

    Raises:
        ConfigError: the file is missing or invalid (with its line).
    """
    return parse_policy(read_policy_text(path), str(path))
