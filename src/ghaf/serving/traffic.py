"""Traffic split hooks: weighted variants, sticky by a request key, and a shadow variant.

The A/B work builds statistics and rollout on top of these: ``choose`` decides which
version answers, ``shadow`` names a version that also scores the request but whose
answer is only logged.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ghaf.errors import InvalidInputError

_SCALE = 10_000


@dataclass(frozen=True)
class TrafficSplit:
    """Weights per version (any positive numbers; normalized) and an optional shadow."""

    weights: Mapping[str, float]
    shadow: str | None = None

    def __post_init__(self) -> None:
        if not self.weights or any(w < 0 for w in self.weights.values()):
            raise InvalidInputError(
                "a traffic split needs at least one version and no negative weight",
                hint="e.g. {'3': 90, '4': 10}",
            )
        if sum(self.weights.values()) <= 0:
            raise InvalidInputError("traffic weights sum to zero", hint="give a version weight")

    @classmethod
    def single(cls, version: str) -> TrafficSplit:
        return cls({version: 1.0})

    def choose(self, key: str | None = None) -> str:
        """The version for a request; the same ``key`` always gets the same version."""
        total = sum(self.weights.values())
        if key is None:
            point = random.random() * total  # nosec B311
        else:
            digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
            point = (int.from_bytes(digest, "big") % _SCALE) / _SCALE * total
        running = 0.0
        last = ""
        for version, weight in self.weights.items():
            if weight <= 0:
                continue
            running += weight
            last = version
            if point < running:
                return version
        return last


HOLDOUT = "holdout"
"""The variant name recorded for units an experiment holds out (served its control)."""


@dataclass(frozen=True)
class Assignment:
    """Sticky experiment assignment: a unit's bucket is ``sha256(salt + unit)``.

    The first 8 bytes of the digest decide the holdout (a ``holdout`` share of units is
    served ``control`` and kept out of the analysis); the next 8 bytes pick a variant by
    weight. Using separate bits keeps the two draws independent; using SHA-256 of
    nothing but the salt and the unit makes the answer the same in every worker, after
    every restart, on every machine.
    """

    experiment: str
    salt: str
    weights: Mapping[str, float]
    holdout: float = 0.0
    control: str | None = None

    def __post_init__(self) -> None:
        TrafficSplit(self.weights)  # the same checks as a split's
        if not 0.0 <= self.holdout < 1.0:
            raise InvalidInputError(
                f"holdout {self.holdout} is not a share in [0, 1)", hint="e.g. --holdout 0.1"
            )

    def assign(self, unit: str) -> tuple[str, str]:
        """(variant recorded, version that answers) for ``unit``; ``holdout`` answers
        with :attr:`control` (the first variant when unset)."""
        digest = hashlib.sha256(f"{self.salt}{unit}".encode()).digest()
        scale = float(1 << 64)
        if self.holdout > 0.0 and int.from_bytes(digest[:8], "big") / scale < self.holdout:
            return HOLDOUT, self.control or next(iter(self.weights))
        point = int.from_bytes(digest[8:16], "big") / scale * sum(self.weights.values())
        running = 0.0
        last = ""
        for version, weight in self.weights.items():
            if weight <= 0:
                continue
            running += weight
            last = version
            if point < running:
                return version, version
        return last, last


UNIT_HEADER = "x-ghaf-unit"
UNIT_KINDS = ("header", "input", "parameter")


@dataclass(frozen=True)
class Route:
    """How a deployment routes at one revision: weights, shadows, experiment assignment."""

    revision: int | None
    split: TrafficSplit
    assignment: Assignment | None = None
    unit_kind: str = "header"
    unit_name: str = UNIT_HEADER
    shadows: tuple[str, ...] = ()
