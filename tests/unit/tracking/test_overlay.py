"""The comparison's reads: runs by id in the asked order, and one metric's curves of many
runs on one step axis: exact when the steps are few, bucketed (each run's last point of a
bucket kept) when they are many."""

from __future__ import annotations

import time

import numpy as np

from ghaf.platform import Platform
from ghaf.tracking.overlay import metric_curves, run_keys, runs_by_id
from ghaf.tracking.service import create_run, log_batch


def _run(platform: Platform, name: str, steps: np.ndarray, values: np.ndarray) -> str:
    owner = platform.admin()
    run_id = create_run(platform, owner, "overlay", name=name)
    now = time.time()
    points = [("loss", float(v), int(s), now) for s, v in zip(steps, values, strict=True)]
    log_batch(platform, owner, run_id, metrics=points, params={"lr": name})
    return run_id


def test_curves_align_on_shared_steps_and_bucket_long_histories(platform: Platform) -> None:
    short = _run(platform, "short", np.arange(0, 50, 2), np.arange(25, dtype=float))
    odd = _run(platform, "odd", np.arange(1, 50, 2), -np.arange(25, dtype=float))
    long = _run(platform, "long", np.arange(10_000), np.arange(10_000, dtype=float))
    missing = "0" * 32

    found = runs_by_id(platform, [long, missing, short])
    assert [r.run_id for r in found] == [long, short]  # asked order, unknown id left out
    assert found[1].params == {"lr": "short"} and found[1].metrics["loss"] == 24.0

    exact = metric_curves(platform, [short, odd], "loss", points=100)
    assert not exact.thinned and exact.steps.tolist() == list(range(50))
    nan = np.nan
    np.testing.assert_array_equal(
        exact.values[:, :4], [[0.0, nan, 1.0, nan], [nan, 0.0, nan, -1.0]]
    )

    thinned = metric_curves(platform, [short, long, odd], "loss", points=100)
    assert thinned.thinned and thinned.steps.size <= 100
    assert (np.diff(thinned.steps) > 0).all() and thinned.steps[-1] == 9_999
    long_row = thinned.values[1]
    assert long_row[-1] == 9_999.0  # the last point of the last bucket
    np.testing.assert_array_equal(long_row, thinned.steps)  # every column a real point
    short_row = thinned.values[0]
    assert short_row[~np.isnan(short_row)][-1] == 24.0  # the short run's end kept

    assert run_keys(platform, ["default"], ["overlay"]) == (["loss"], ["lr"])
    assert run_keys(platform, []) == ([], [])
