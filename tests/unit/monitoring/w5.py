"""The W5 drift workload of WORKLOADS.md (seed 7), shared by tests and the benchmark."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

LEVELS = np.array([f"level_{k}" for k in range(10)])


def w5_tables(seed: int = 7, rows: int = 100_000) -> tuple[pa.Table, pa.Table]:
    """Reference and current: 20 numeric + 5 categorical; num_00..04 +0.1 sd, cat_0 4 pp moved."""
    rng = np.random.default_rng(seed)

    def make(shift: bool) -> pa.Table:
        cols: dict[str, object] = {}
        for i in range(20):
            cols[f"num_{i:02d}"] = rng.normal(0.1 if (shift and i < 5) else 0.0, 1.0, rows)
        for i in range(5):
            p = np.full(10, 0.1)
            if shift and i == 0:
                p[0] += 0.04
                p[1] -= 0.04
            cols[f"cat_{i}"] = LEVELS[rng.choice(10, rows, p=p)]
        return pa.table(cols)

    return make(False), make(True)
