"""How ``--on ray`` splits a Parquet input into work units (:func:`ghaf.serving.batch_ray._ranges`):
whole row groups in input order, none bigger than about ``RANGE_ROWS``, and shrinking to a row
group each at the end of the file, so the nodes finish together."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.serving.batch_ray import RANGE_ROWS, UNITS_PER_ACTOR, _ranges


def _metadata(tmp_path: Path, rows: int, group_rows: int) -> pq.FileMetaData:
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": np.arange(rows)}), path, row_group_size=group_rows)
    return pq.read_metadata(path)


def test_ranges_cover_the_groups_in_order_and_shrink_at_the_end(tmp_path: Path) -> None:
    metadata = _metadata(tmp_path, 4_000_000, 65_536)  # 62 row groups
    for actors in (1, 2, 3):
        ranges = _ranges(metadata, 1_000, actors)
        bounds = [(r["first"], r["last"]) for r in ranges]
        assert bounds[0][0] == 0 and bounds[-1][1] == metadata.num_row_groups
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in pairwise(bounds))
        assert all(r["rows"] == 1_000 for r in ranges)  # the reader's batch size
        sizes = [last - first for first, last in bounds]
        assert max(sizes) * 65_536 <= RANGE_ROWS + 65_536
        assert sizes[-actors:] == [1] * actors, sizes  # the tail: one row group per unit
        tail = sizes[-actors * UNITS_PER_ACTOR :]
        assert tail == sorted(tail, reverse=True) and tail[0] < max(sizes), sizes


def test_a_small_file_still_gives_every_actor_units(tmp_path: Path) -> None:
    metadata = _metadata(tmp_path, 6_000, 500)  # 12 row groups, as the Ray test's input
    ranges = _ranges(metadata, 1_000, 2)
    assert len(ranges) >= 2 * 2
    assert sum(r["last"] - r["first"] for r in ranges) == 12
    one = _ranges(_metadata(tmp_path, 10, 10), 1_000, 4)  # one row group: one unit
    assert [(r["first"], r["last"]) for r in one] == [(0, 1)]
