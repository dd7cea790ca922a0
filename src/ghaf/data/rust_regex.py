"""Regex checks over a high-cardinality string column, on Rust's regex engine via polars.

DuckDB's ``regexp_matches`` (RE2) spends about 80 ns on every string, whatever its
length: the set-up of each match dominates short values such as e-mail addresses, and
over 10M distinct values it was 40% of a 20-check contract. Rust's ``regex`` crate, run
by polars vectorized over the column, spends about 50 ns, on polars' own threads beside
the DuckDB scan (which then does not read the column). Dictionary-encoded columns stay
in DuckDB, where a regex runs once per distinct value.

The two engines agree on a common subset of syntax only: RE2 reads ``\\d``, ``\\w``,
``\\s`` and ``\\b`` as ASCII, Rust as Unicode; Rust nests character classes and has set
operators (``&&``, ``--``) where RE2 reads literals; ``{,n}``, ``\\<`` and inline flags
differ. :func:`portable` admits only patterns built from literals, escaped ASCII
punctuation, ``.``, ``^``, ``$``, classes of ASCII letters, digits, ranges of them and
plain punctuation, groups ``(...)`` and ``(?:...)``, ``|`` and the repetitions ``*``,
``+``, ``?``, ``{m}``, ``{m,}``, ``{m,n}`` (lazy or not). Every other pattern, and any
pattern polars refuses, runs in DuckDB. A property test checks that both engines give
the same verdicts on random patterns from the subset.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ghaf.data.contracts import Regex

_CLASS_PUNCTUATION = frozenset(" !\"#$%'()*+,./:;<=>?@_`{|}")
"""Punctuation that means itself inside a class in both engines (no [ ] \\ ^ - & ~)."""
_ESCAPABLE = frozenset("\\.^$|?*+()[]{}/-#&~!\"%',:;=@_`")
"""Escaped, these mean the literal in both engines (``\\<``/``\\>`` are word edges in Rust)."""
_REPETITION = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


def __getattr__(name: str) -> Any:
    """``EngineError``: what polars raises when it cannot run a pattern (the caller runs it
    in DuckDB). Looked up on use, so importing this module does not load polars."""
    if name == "EngineError":
        import polars as pl

        return pl.exceptions.PolarsError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def portable(pattern: str) -> bool:
    """Whether ``pattern`` means the same in RE2 and Rust's regex (the subset above)."""
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n or pattern[i + 1] not in _ESCAPABLE:
                return False
            i += 2
        elif char == "[":
            end = _class_end(pattern, i)
            if end is None:
                return False
            i = end
        elif char == "(":
            if pattern.startswith("(?", i):
                if not pattern.startswith("(?:", i):
                    return False
                i += 2
            i += 1
        elif char == "{":
            match = _REPETITION.match(pattern, i)
            if match is None:
                return False
            i = match.end()
        elif char in "]}" or not char.isprintable():
            return False
        else:
            i += 1
    return True


def _class_end(pattern: str, start: int) -> int | None:
    """The index after the class opening at ``start``, or ``None`` outside the subset."""
    i, n = start + 1, len(pattern)
    if i < n and pattern[i] == "^":
        i += 1
    first = True
    while i < n:
        char = pattern[i]
        if char == "]" and not first:
            return i + 1
        if char == "\\":
            if i + 1 >= n or pattern[i + 1] not in _ESCAPABLE:
                return None
            i += 2
        elif char.isascii() and char.isalnum():
            ranged = i + 2 < n and pattern[i + 1] == "-"
            if ranged and pattern[i + 2].isascii() and pattern[i + 2].isalnum():
                i += 3
            else:
                i += 1
        elif char in _CLASS_PUNCTUATION:
            i += 1
        else:
            return None
        first = False
    return None


def eligible(check: Regex, column_type: pa.DataType | None) -> bool:
    """A regex check polars can run exactly: a portable pattern over a string column."""
    if column_type is None:
        return False
    is_string = pa.types.is_string(column_type) or pa.types.is_large_string(column_type)
    return bool(is_string and portable(check.pattern))


def count_mismatches(path: Path, checks: Sequence[Regex]) -> list[int]:
    """Non-null values failing each check's pattern (partial match, as ``regexp_matches``),
    in one streaming scan of the file's columns the checks name."""
    import polars as pl  # on use: importing this module must not load polars

    failing = [
        (~pl.col(check.column).str.contains(check.pattern, literal=False, strict=True))
        .sum()
        .alias(str(index))
        for index, check in enumerate(checks)
    ]
    frame = pl.scan_parquet(path, glob=False).select(failing).collect(engine="streaming")
    return [int(frame.item(0, index) or 0) for index in range(len(checks))]  # all-null: None
