"""Adaptive batching coalesces concurrent requests, splits big ones, and applies backpressure."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from ghaf.serving.base import Array, Signature
from ghaf.serving.batching import Batcher, BatchPolicy, OverloadedError
from ghaf.serving.traffic import TrafficSplit


class SlowDouble:
    """A real runtime: doubles its input, records batch sizes and which thread ran it."""

    flavor = "test"
    signature = Signature.tabular(["a", "b"])

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def predict(self, batch: Array) -> dict[str, Array]:
        time.sleep(self.delay)
        self.batches.append(len(batch))
        self.threads.add(threading.current_thread().name)
        return {"y": batch * 2}

    def warmup(self) -> None:
        pass


def _run(runtime: SlowDouble, policy: BatchPolicy, sizes: list[int]) -> list[Array]:
    async def main() -> list[Array]:
        batcher = Batcher("m", runtime, policy)
        batcher.start()
        try:
            inputs = [np.full((n, 2), i, dtype=np.float32) for i, n in enumerate(sizes)]
            outs = await asyncio.gather(*(batcher.predict(x) for x in inputs))
            for x, out in zip(inputs, outs, strict=True):
                np.testing.assert_array_equal(out["y"], x * 2)  # each caller gets its own rows
            return [o["y"] for o in outs]
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_are_coalesced_off_the_loop() -> None:
    runtime = SlowDouble()
    _run(runtime, BatchPolicy(max_batch_rows=64), [1] * 50)
    assert sum(runtime.batches) == 50
    assert len(runtime.batches) < 10  # 50 requests, a handful of batches
    assert all(name.startswith("ghaf-predict") for name in runtime.threads)


def test_large_request_is_split_and_reassembled() -> None:
    runtime = SlowDouble(0)
    _run(runtime, BatchPolicy(max_batch_rows=16), [50, 3])
    assert max(runtime.batches) <= 16 and sum(runtime.batches) == 53


def test_full_queue_raises_overloaded() -> None:
    async def main() -> None:
        batcher = Batcher("m", SlowDouble(0.05), BatchPolicy(max_queue_rows=5))
        batcher.start()
        try:
            tasks = [asyncio.ensure_future(batcher.predict(np.zeros((3, 2)))) for _ in range(6)]
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert any(isinstance(r, OverloadedError) for r in results)
            assert any(isinstance(r, dict) for r in results)
        finally:
            await batcher.stop()

    asyncio.run(main())


def test_traffic_split_weights_and_stickiness() -> None:
    split = TrafficSplit({"3": 90, "4": 10}, shadow="5")
    keys = [f"customer-{i}" for i in range(4000)]
    chosen = [split.choose(k) for k in keys]
    assert chosen == [split.choose(k) for k in keys]  # sticky
    share = chosen.count("4") / len(chosen)
    assert 0.08 < share < 0.12
    with pytest.raises(ValueError, match="negative"):
        TrafficSplit({"3": -1})
