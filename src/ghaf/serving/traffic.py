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
