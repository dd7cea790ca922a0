"""The online store Protocol and the record types it trades in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from ghaf.features.definitions import FeatureView

Row = tuple[Any, ...]
"""One stored row as read back: ``(event_ts_us, feature values...)`` in requested order."""


def stored_form(column: pa.ChunkedArray, dtype: str) -> pa.ChunkedArray:
    """``column`` as online stores keep it: timestamp features as UTC epoch microseconds."""
    if dtype == "timestamp":
        return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return column


@dataclass(frozen=True)
class ViewLayout:
    """How one feature view is laid out in an online store."""

    name: str
    join_keys: tuple[str, ...]
    key_dtypes: tuple[str, ...]
    features: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, view: FeatureView) -> ViewLayout:
        dtypes = tuple(e.key_dtype for e in view.entities for _ in e.join_keys)
        return cls(
            view.name, view.join_keys, dtypes, tuple((f.name, f.dtype) for f in view.features)
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.features)


class OnlineStore(Protocol):
    """Latest feature values per entity per view, for low-latency reads.

    ``write_view`` is atomic: readers see the previous state or the new one, never a
    mix, even when the writer is killed. Keys passed to reads are scalars for a view
    with one join key and tuples for a composite key.
    """

    url: str
    region: str | None
    """Where its data lives: the region the store recorded, else the one declared at
    open (None: not known)."""

    def write_view(
        self, layout: ViewLayout, rows: pa.Table, *, watermark: datetime, replace: bool
    ) -> int:
        """Upsert ``rows`` (join keys, ``__ev`` epoch µs, features); ``replace`` drops the rest.

        A row only replaces a stored one whose ``__ev`` is not newer. Returns rows written.
        """
        ...

    def read_many(
        self, layout: ViewLayout, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Row | None]:
        """The stored rows for ``keys``, aligned with them; ``None`` where absent."""
        ...

    def read_all(self, layout: ViewLayout) -> pa.Table:
        """Every stored row of the view: join keys, ``__ev`` and the features."""
        ...

    def watermark(self, view: str) -> datetime | None:
        """The watermark of the last completed write of ``view``."""
        ...

    def close(self) -> None: ...
