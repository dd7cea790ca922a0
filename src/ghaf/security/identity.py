"""Who is asking: the ``Actor`` every governed operation carries, and how it proved it.

Identity is proven, never asserted. An actor carries the :class:`Credential` that
proved it: the operating-system account that owns the home (embedded mode), a Ghaf
API token, or an OIDC JWT. The spine refuses an actor without one, so a name typed
into a setting, an environment variable or a constructor acts as nobody.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field
from typing import Literal

ActorKind = Literal["user", "service", "system"]
CredentialKind = Literal["home-owner", "token", "oidc"]


@dataclass(frozen=True)
class Credential:
    """How an actor proved who it is.

    ``minted_by`` names who created the credential (the creator of an API token). On
    one person's laptop the home owner can mint a token for anybody, so an approval
    made with a token that the version's author minted is evidence, not a second person.
    """

    kind: CredentialKind
    id: str
    minted_by: str | None = None

    def describe(self) -> str:
        """One phrase for audit records and messages, e.g. ``token 3f2a… minted by ana``."""
        minted = f" minted by {self.minted_by}" if self.minted_by else ""
        return f"{self.kind} {self.id}{minted}"


@dataclass(frozen=True)
class Actor:
    """A principal making a request, with where it came from and the request id."""

    name: str
    kind: ActorKind = "user"
    roles: frozenset[str] = field(default_factory=frozenset)
    source: str | None = None
    request_id: str | None = None
    credential: Credential | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("an Actor needs a non-empty name")

    @property
    def authenticated(self) -> bool:
        """Whether a credential proved this actor (only those may act)."""
        return self.credential is not None


def os_user() -> tuple[str, int]:
    """The account this process runs as, from the kernel (not ``$USER`` or ``$LOGNAME``)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name, uid
    except KeyError:  # a uid with no passwd entry (some containers)
        return f"uid-{uid}", uid
