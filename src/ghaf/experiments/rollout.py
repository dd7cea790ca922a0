"""A canary's rollout plan: the steps of traffic, what each step must show, the guardrails.

The plan is data (YAML or JSON, or the API's body), checked here with a message that
names the field. Each step gives the candidate a share of the deployment's traffic
(percent); it stays there at least ``min_time_s`` and until ``min_samples`` of its
predictions were logged, and moves on only when every guardrail passes:

- ``max_error_rate``: the share of the candidate's requests answered 5xx, from the
  serving metrics (``/metrics`` of each ``ghaf serve`` in ``metrics``);
- ``max_p99_ms``: the 99th percentile of its scoring latency, from the prediction log;
- ``quality``: its accuracy (or success rate) on labelled outcomes against the
  champion's, within ``max_drop`` (and at least ``min_value``); while fewer than
  ``min_labels`` labels have arrived, the drift of its scores from the champion's
  (PSI at most ``max_psi``) stands in for it, except for promotion when
  ``labels_to_promote``.

A guardrail is breached only on evidence at ``confidence`` (one-sided); one passes on
its measured value once the step has its samples. Anything else holds or pauses.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ghaf.errors import InvalidInputError
from ghaf.registry.base import check_alias

MAX_STEPS = 20
MAX_TARGETS = 16


class QualitySLO(BaseModel):
    """The model-quality guardrail: labelled outcomes, or a drift estimate until they come."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["accuracy", "success_rate"] = Field(
        default="accuracy",
        description="accuracy: the outcome is the true class, compared with the predicted "
        "one; success_rate: the outcome itself is 1 (success) or 0",
    )
    metric: str = Field(
        default="outcome",
        min_length=1,
        max_length=128,
        description="The outcome metric the labels are reported as (POST /v2/feedback).",
    )
    max_drop: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Tolerated drop below the champion."
    )
    min_value: float | None = Field(
        default=None, ge=0.0, le=1.0, description="An absolute floor (the SLO), or none."
    )
    min_labels: int = Field(
        default=100, ge=1, le=10_000_000, description="Labels per side before they are judged."
    )
    threshold: float = Field(
        default=0.5, description="One-column scores: class 1 at or above this value."
    )
    max_psi: float | None = Field(
        default=0.25,
        gt=0.0,
        description="Score drift (PSI) tolerated while labels are pending; none: wait for them.",
    )
    reference_s: float = Field(
        default=3600.0,
        ge=0.0,
        le=30 * 86400.0,
        description="How long before the canary started the champion's answers count.",
    )
    labels_to_promote: bool = Field(
        default=True, description="Promotion needs the labelled verdict, not the estimate."
    )


class RolloutPlan(BaseModel):
    """How a canary ramps and what stops it (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid")
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 10.0, 25.0, 50.0, 100.0],
        min_length=1,
        max_length=MAX_STEPS,
        description="The candidate's share of traffic at each step, percent, increasing.",
    )
    min_samples: int = Field(default=100, ge=1, le=100_000_000)
    min_time_s: float = Field(default=300.0, ge=0.0, le=30 * 86400.0)
    interval_s: float = Field(
        default=60.0, ge=0.2, le=3600.0, description="How often the evaluator looks."
    )
    metrics: list[str] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        description="Base URLs of the ghaf serve processes whose /metrics count requests "
        "(served with --metrics-public: the evaluator sends no credential).",
    )
    max_error_rate: float | None = Field(default=0.01, ge=0.0, le=1.0, validate_default=True)
    max_p99_ms: float | None = Field(default=500.0, gt=0.0, le=3_600_000.0)
    quality: QualitySLO | None = Field(default_factory=QualitySLO)
    confidence: float = Field(default=0.95, ge=0.5, le=0.9999)
    promote_alias: str | None = Field(
        default="champion", description="The alias the candidate takes when promoted, or none."
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float]) -> list[float]:
        if any(not 0.0 < s <= 100.0 for s in steps):
            raise ValueError("each step is a percent of traffic in (0, 100]")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps must increase, e.g. [5, 10, 25, 50, 100]")
        return [float(s) for s in steps]

    @field_validator("metrics")
    @classmethod
    def _targets(cls, targets: list[str]) -> list[str]:
        return [check_target(t) for t in targets]

    @field_validator("promote_alias")
    @classmethod
    def _alias(cls, alias: str | None) -> str | None:
        return None if alias is None else check_alias(alias)

    @field_validator("max_error_rate")
    @classmethod
    def _needs_metrics(cls, rate: float | None, info: ValidationInfo) -> float | None:
        if rate is not None and not info.data.get("metrics"):
            raise ValueError(
                "an error-rate guardrail needs metrics: the base URL of each ghaf serve "
                "(served with --metrics-public); or set max_error_rate to null"
            )
        return rate

    @property
    def alpha(self) -> float:
        """The two-sided level whose each side is a one-sided bound at ``confidence``."""
        return 2.0 * (1.0 - self.confidence)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def check_target(url: str) -> str:
    """A metrics target: ``http(s)://host:port`` and nothing else (no path, no userinfo).

    Raises:
        ValueError: anything else (pydantic turns it into the field's message).
    """
    parts = urlsplit(url.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{url!r} is not a server's base URL such as http://127.0.0.1:8080")
    return f"{parts.scheme}://{parts.netloc}"


def parse_plan(data: Any, source: str = "the rollout plan") -> RolloutPlan:
    """A checked plan from a mapping (or a plan).

    Raises:
        InvalidInputError: naming the field, the value and what is accepted.
    """
    if isinstance(data, RolloutPlan):
        return data
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"{source} must be a mapping", hint="e.g. {steps: [5, 10, 25, 50, 100]}"
        )
    try:
        return RolloutPlan.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        reason = first["msg"].removeprefix("Value error, ")
        raise InvalidInputError(
            f"{source}: field {where} is invalid: {reason}",
            hint="see ghaf experiments canary start --help for each field",
        ) from None


def load_plan(text: str, source: str) -> RolloutPlan:
    """A plan from YAML or JSON text.

    Raises:
        InvalidInputError: not YAML/JSON, or an invalid plan (the field named).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"{source} is not YAML or JSON: {exc}".splitlines()[0], hint="fix its syntax"
        ) from None
    return parse_plan(data, source)


def plan_json(plan: RolloutPlan) -> str:
    return json.dumps(plan.to_dict(), sort_keys=True)
