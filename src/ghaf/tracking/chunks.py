"""Packing a flush's metric points into one column-wise chunk per key (NumPy arrays)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_STEP = np.dtype("<i8")
_FLOAT = np.dtype("<f8")


@dataclass(frozen=True)
class Chunk:
    """The points of one key from one flush."""

    key: str
    steps: np.ndarray[Any, Any]
    values: np.ndarray[Any, Any]
    stamps: np.ndarray[Any, Any]

    def row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "count": int(self.steps.size),
            "min_step": int(self.steps.min()),
            "max_step": int(self.steps.max()),
            "steps": self.steps.astype(_STEP, copy=False).tobytes(),
            "values": self.values.astype(_FLOAT, copy=False).tobytes(),
            "timestamps": self.stamps.astype(_FLOAT, copy=False).tobytes(),
        }

    def summary(self) -> list[float]:
        """[latest value, its step, its time, min, max]; latest = highest (step, time)."""
        last = int(np.lexsort((self.stamps, self.steps))[-1])
        return [
            float(self.values[last]),
            int(self.steps[last]),
            float(self.stamps[last]),
            float(self.values.min()),
            float(self.values.max()),
        ]


def pack_metrics(points: Sequence[tuple[str, float, int, float]]) -> list[Chunk]:
    """Group ``(key, value, step, time)`` points by key into arrays (order kept)."""
    by_key: dict[str, list[tuple[str, float, int, float]]] = {}
    first = points[0][0]
    if all(p[0] == first for p in points):  # the common case: one key per flush
        by_key[first] = list(points)
    else:
        for point in points:
            by_key.setdefault(point[0], []).append(point)
    chunks = []
    for key, group in by_key.items():
        _, values, steps, stamps = zip(*group, strict=True)
        chunks.append(
            Chunk(
                key,
                np.asarray(steps, dtype=_STEP),
                np.asarray(values, dtype=_FLOAT),
                np.asarray(stamps, dtype=_FLOAT),
            )
        )
    return chunks


def unpack_chunk(
    steps: bytes, values: bytes, stamps: bytes
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    return (
        np.frombuffer(steps, dtype=_STEP),
        np.frombuffer(values, dtype=_FLOAT),
        np.frombuffer(stamps, dtype=_FLOAT),
    )
