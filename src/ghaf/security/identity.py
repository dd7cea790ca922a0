"""Who is asking: the ``Actor`` every governed operation carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ActorKind = Literal["user", "service", "system"]


@dataclass(frozen=True)
class Actor:
    """A principal making a request, with where it came from and the request id."""

    name: str
    kind: ActorKind = "user"
    roles: frozenset[str] = field(default_factory=frozenset)
    source: str | None = None
    request_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("an Actor needs a non-empty name")
