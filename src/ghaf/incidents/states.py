"""ITIL incident states and the only transitions allowed between them.

::

    New ──ack──> In Progress <──resume── On Hold
     │  ╲           │  ╲──hold──────────────^ │
     │   hold       │                         │
     ├─resolve──────┴──resolve──> Resolved <──┘ resolve
     │                              │   ╲──reopen──> In Progress
     └─cancel (also from In Progress, On Hold) ──> Canceled
                                    └──close──> Closed

Closed and Canceled are final. Resolving needs no acknowledgement first (an alert that
clears itself); closing needs a resolution first (ServiceNow's rule).
"""

from __future__ import annotations

from ghaf.errors import InvalidInputError

NEW, IN_PROGRESS, ON_HOLD, RESOLVED, CLOSED, CANCELED = (
    "New",
    "In Progress",
    "On Hold",
    "Resolved",
    "Closed",
    "Canceled",
)
STATES = (NEW, IN_PROGRESS, ON_HOLD, RESOLVED, CLOSED, CANCELED)
OPEN_STATES = (NEW, IN_PROGRESS, ON_HOLD)

TRANSITIONS: dict[str, dict[str, str]] = {
    "ack": {NEW: IN_PROGRESS},
    "hold": {NEW: ON_HOLD, IN_PROGRESS: ON_HOLD},
    "resume": {ON_HOLD: IN_PROGRESS},
    "resolve": {NEW: RESOLVED, IN_PROGRESS: RESOLVED, ON_HOLD: RESOLVED},
    "close": {RESOLVED: CLOSED},
    "cancel": {NEW: CANCELED, IN_PROGRESS: CANCELED, ON_HOLD: CANCELED},
    "reopen": {RESOLVED: IN_PROGRESS},
}
"""Verb -> {from state: to state}; any pair not listed is refused."""


def next_state(number: str, state: str, verb: str) -> str:
    """The state ``verb`` moves an incident in ``state`` to.

    Raises:
        InvalidInputError: the transition is not allowed (naming the ones that are).
    """
    moves = TRANSITIONS.get(verb)
    if moves is None:
        raise InvalidInputError(
            f"{verb!r} is not an incident transition", hint=f"use one of {', '.join(TRANSITIONS)}"
        )
    if state not in moves:
        allowed = [v for v, m in TRANSITIONS.items() if state in m]
        hint = f"from {state}: {', '.join(allowed)}" if allowed else f"{state} is final"
        raise InvalidInputError(f"incident {number} is {state}: it cannot {verb}", hint=hint)
    return moves[state]
