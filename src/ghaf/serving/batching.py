"""Adaptive batching: coalesce concurrent requests for a model and score them off the loop.

While one batch is being scored in the worker thread, new requests queue up; when the
thread is free, everything queued (up to ``max_batch_rows``) becomes the next batch. Under
light load a request is scored alone at once; under heavy load batches grow by themselves.
``max_wait_ms`` optionally holds a small batch open a little longer. A request larger than
``max_batch_rows`` is split into chunks and reassembled, never merged past the maximum.
The queue is bounded in rows: when full, :class:`OverloadedError` is raised (HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ghaf.errors import BackendUnavailableError
from ghaf.serving.base import Array, Runtime


class OverloadedError(BackendUnavailableError):
    """The model's queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, model: str, retry_after: int = 1) -> None:
        super().__init__(f"model {model!r} is overloaded", hint=f"retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class BatchPolicy:
    """Batching limits for one model."""

    max_batch_rows: int = 4096
    max_wait_ms: float = 0.0
    max_queue_rows: int = 65536
    threads: int = 1


@dataclass
class _Item:
    rows: Array
    future: asyncio.Future[dict[str, Array]]
    enqueued: float = field(default_factory=time.perf_counter)


BatchObserver = Callable[[int, float], None]
"""Called after each batch with (rows, seconds scoring): feeds the metrics."""


def _limit_threads(threads: int) -> None:
    """Set this worker thread's OpenMP/BLAS thread count (a shared 2-core box stalls otherwise)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=threads)


class Batcher:
    """Queue + one scoring thread for one runtime."""

    def __init__(
        self,
        name: str,
        runtime: Runtime,
        policy: BatchPolicy | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self.name = name
        self.runtime = runtime
        self.policy = policy or BatchPolicy()
        self._observer = observer
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"ghaf-predict-{name}",
            initializer=_limit_threads,
            initargs=(self.policy.threads,),
        )

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        """Start the collector task on the running loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batch-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(OverloadedError(self.name))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, rows: Array) -> dict[str, Array]:
        """Score ``rows`` (2-D) as part of whatever batch forms; raises :class:`OverloadedError`."""
        n = len(rows)
        if self._queued_rows + n > self.policy.max_queue_rows and self._queued_rows:
            raise OverloadedError(self.name)
        limit = self.policy.max_batch_rows
        if n <= limit:
            return await self._enqueue(rows)
        parts = await asyncio.gather(
            *(self._enqueue(rows[start : start + limit]) for start in range(0, n, limit))
        )
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    def _enqueue(self, rows: Array) -> asyncio.Future[dict[str, Array]]:
        future: asyncio.Future[dict[str, Array]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(rows, future))
        self._queued_rows += len(rows)
        assert self._wakeup is not None, "Batcher.start() was not called"  # nosec B101
        self._wakeup.set()
        return future

    def _take(self) -> list[_Item]:
        items: list[_Item] = []
        total = 0
        while self._queue and total + len(self._queue[0].rows) <= self.policy.max_batch_rows:
            item = self._queue.popleft()
            total += len(item.rows)
            items.append(item)
        if not items and self._queue:  # never happens after splitting; defensive
            items.append(self._queue.popleft())
            total = len(items[0].rows)
        self._queued_rows -= total
        return items

    async def _run(self) -> None:
        assert self._wakeup is not None  # nosec B101
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.policy.max_wait_ms > 0 and self._queued_rows < self.policy.max_batch_rows:
                await asyncio.sleep(self.policy.max_wait_ms / 1000)
            items = [item for item in self._take() if not item.future.cancelled()]
            if not items:
                continue
            started = time.perf_counter()
            try:
                outputs, sizes = await loop.run_in_executor(self._executor, self._score, items)
            except Exception as exc:  # noqa: BLE001 - the model raised: every caller in the batch gets it
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self._observer is not None:
                self._observer(sum(sizes), time.perf_counter() - started)
            start = 0
            for item, size in zip(items, sizes, strict=True):
                if not item.future.done():
                    item.future.set_result({k: v[start : start + size] for k, v in outputs.items()})
                start += size

    def _score(self, items: list[_Item]) -> tuple[dict[str, Array], list[int]]:
        sizes = [len(item.rows) for item in items]
        batch = items[0].rows if len(items) == 1 else np.concatenate([i.rows for i in items])
        return self.runtime.predict(batch), sizes

    def predict_sync(self, rows: Array) -> dict[str, Array]:
        """Score directly in the calling thread (tools and tests; no batching)."""
        return self.runtime.predict(rows)


def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in the default executor from async code (small helper for the app)."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)
