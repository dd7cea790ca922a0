"""Four eyes: an approval (or a break-glass confirmation) must come from a second person.

The second person must be authenticated, and must be neither the version's author nor
whoever trained the run it came from. On one person's laptop the home's owner holds
every key and can mint a token for anybody, so a credential minted by the author (or an
author whose token the approver minted) is evidence, not a second person: the release
policy refuses it (``self_minted_approvals: refuse``, the default) or lets it through
flagged (``flag``), and the flag shows on the model card and in the audit record.
With OIDC identities from the organisation's provider it is prevention.
"""

from __future__ import annotations

from ghaf.errors import PermissionDeniedError, PolicyViolationError
from ghaf.security.identity import Actor


def second_person_flags(
    actor: Actor,
    *,
    subject: str,
    people: dict[str, str],
    people_minted_by: dict[str, str | None],
    self_minted: str,
    verb: str = "approve",
) -> list[str]:
    """Refuse ``actor`` as the second person for ``subject``; return evidence flags.

    Args:
        subject: what is approved, for messages (``fraud:2``).
        people: role -> name of everyone who may not be the second person
            (``{"author": "ana", "trainer": "ben"}``).
        people_minted_by: role -> who minted that person's credential, when known.
        self_minted: the release policy's ``self_minted_approvals`` (refuse or flag).
        verb: what the second person does, for messages (approve, confirm).

    Raises:
        PermissionDeniedError: the actor is not authenticated.
        PolicyViolationError: the actor is one of ``people``, or their credentials tie
            them to one of them and the policy refuses that.
    """
    if actor.credential is None:
        raise PermissionDeniedError(
            f"an unauthenticated actor cannot {verb} {subject}",
            hint="sign in: the home's OS owner, ghaf --token TOKEN, or an OIDC login",
        )
    for role, name in people.items():
        if name and actor.name.strip().lower() == name.strip().lower():
            raise PolicyViolationError(
                f"{actor.name} is the {role} of {subject} and cannot {verb} it",
                hint="four eyes: another approver, with their own credential, approves it",
            )
    ties = []
    minted = actor.credential.minted_by
    for role, name in people.items():
        if minted and name and minted == name:
            ties.append(f"{actor.name}'s {actor.credential.describe()}: the {role} minted it")
        if people_minted_by.get(role) == actor.name:
            ties.append(f"the {role} {name} acted with a credential {actor.name} minted")
    if ties and self_minted != "flag":
        raise PolicyViolationError(
            f"{actor.name} cannot be the second person for {subject}: {'; '.join(ties)}",
            hint="approve with a credential the author did not issue (an OIDC login, or a "
            "token another admin minted); a release policy with self_minted_approvals: flag "
            "accepts it, flagged",
        )
    return [f"self-minted: {tie}" for tie in ties]


EVIDENCE_HEADING = "## Release evidence"


def with_release_evidence(card: str, title: str, lines: list[str]) -> str:
    """``card`` with an entry added to its *Release evidence* section (created at the end).

    Flagged approvals and break-glass releases are written here, so whoever reads the
    card sees them next to the metrics.
    """
    entry = [f"- **{title}**", *(f"  - {line}" for line in lines)]
    body = card.rstrip("\n").splitlines()
    if EVIDENCE_HEADING in body:
        start = body.index(EVIDENCE_HEADING)
        end = next((i for i in range(start + 1, len(body)) if body[i].startswith("## ")), len(body))
        body[end:end] = entry
    else:
        body += ["", EVIDENCE_HEADING, "", *entry]
    return "\n".join(body) + "\n"
