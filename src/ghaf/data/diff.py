"""Compare two dataset versions: schema changes and profile changes per column."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ghaf.data.store import get_dataset
from ghaf.platform import Platform

_STATS = ("count", "nulls", "distinct", "min", "max", "mean", "std")


@dataclass(frozen=True)
class DatasetDiff:
    """What changed from version ``a`` to ``b``."""

    a: str
    b: str
    rows: tuple[int, int]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)
    stats: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def same_schema(self) -> bool:
        return not (self.added or self.removed or self.retyped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "rows": list(self.rows),
            "added": self.added,
            "removed": self.removed,
            "retyped": {k: list(v) for k, v in self.retyped.items()},
            "stats": {c: {k: list(v) for k, v in s.items()} for c, s in self.stats.items()},
        }


def diff_versions(platform: Platform, ref_a: str, ref_b: str) -> DatasetDiff:
    """Schema and profile differences between two versions (any two datasets, in fact)."""
    a, b = get_dataset(platform, ref_a), get_dataset(platform, ref_b)
    names_a, names_b = a.schema.names, b.schema.names
    retyped = {
        n: (str(a.schema.field(n).type), str(b.schema.field(n).type))
        for n in names_a
        if n in names_b and not a.schema.field(n).type.equals(b.schema.field(n).type)
    }
    stats: dict[str, dict[str, tuple[Any, Any]]] = {}
    cols_a, cols_b = a.profile.get("columns", {}), b.profile.get("columns", {})
    for name in names_a:
        if name not in names_b:
            continue
        pa_, pb = cols_a.get(name, {}), cols_b.get(name, {})
        changed = {s: (pa_.get(s), pb.get(s)) for s in _STATS if pa_.get(s) != pb.get(s)}
        if changed:
            stats[name] = changed
    return DatasetDiff(
        a.ref,
        b.ref,
        (a.num_rows, b.num_rows),
        [n for n in names_b if n not in names_a],
        [n for n in names_a if n not in names_b],
        retyped,
        stats,
    )
