"""Subject matching follows NATS semantics (checked against a regex reference)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ghaf.events.base import subject_matches

tokens = st.sampled_from(["a", "b", "drift", "x1"])
subjects = st.lists(tokens, min_size=1, max_size=4).map(".".join)
patterns = st.tuples(
    st.lists(st.one_of(tokens, st.just("*")), min_size=1, max_size=4), st.booleans()
).map(lambda p: ".".join(p[0]) + (".>" if p[1] else ""))


def reference(pattern: str, subject: str) -> bool:
    parts = []
    for part in pattern.split("."):
        if part == "*":
            parts.append(r"[^.]+")
        elif part == ">":
            parts.append(r"[^.]+(\.[^.]+)*")
        else:
            parts.append(re.escape(part))
    return re.fullmatch(r"\.".join(parts), subject) is not None


@given(patterns, subjects)
def test_matches_like_nats(pattern: str, subject: str) -> None:
    assert subject_matches(pattern, subject) == reference(pattern, subject)


def test_examples() -> None:
    assert subject_matches("drift.>", "drift.detected.fraud")
    assert not subject_matches("drift.>", "drift")
    assert subject_matches("*.detected", "drift.detected")
    assert not subject_matches("drift.*", "drift.a.b")
