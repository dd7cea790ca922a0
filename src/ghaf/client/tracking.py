"""A run logged from a remote client: points buffer in memory, a thread ships batches.

``log_metric`` appends to four columns (key, value, step, timestamp) and returns; a
background thread sends what has accumulated every ``flush_interval`` seconds (sooner
when ``MAX_BUFFER`` points wait) as one columnar batch, which the server writes in one
transaction. ``end()`` sends the rest and then ends the run, so every point is durable
once it returns. A ``kill -9`` of the client loses at most the points of the last
``flush_interval``; a batch the server refused stays queued and ``end()`` raises it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ghaf.errors import GhafError, InvalidInputError
from ghaf.logs import get_logger

if TYPE_CHECKING:
    from ghaf.client.http import Client

DEFAULT_FLUSH_INTERVAL = 1.0
"""Seconds between background sends: the most a ``kill -9`` of the client can lose."""
MAX_BUFFER = 50_000
"""Points waiting before the sender is woken early."""
BATCH_POINTS = 20_000
"""Points per request (about 1 MB of JSON: well under any server's body limit)."""
_log = get_logger(__name__)


class _Columns:
    """Points not sent yet, as columns."""

    __slots__ = ("key", "step", "timestamp", "value")

    def __init__(self) -> None:
        self.key: list[str] = []
        self.value: list[float] = []
        self.step: list[int] = []
        self.timestamp: list[float] = []

    def __len__(self) -> int:
        return len(self.key)

    def to_json(self) -> dict[str, list[Any]]:
        return {
            "key": self.key,
            "value": self.value,
            "step": self.step,
            "timestamp": self.timestamp,
        }


class RemoteRun:
    """A run in progress on a server; use it as a context manager or call :meth:`end`."""

    def __init__(
        self,
        client: Client,
        run_id: str,
        project: str,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.project = project
        self.status = "running"
        self._columns = _Columns()
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._pending_params: dict[str, str] = {}
        self._pending_tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._failure: GhafError | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._interval = flush_interval
        self._thread = threading.Thread(
            target=self._loop, name=f"ghaf-run-{run_id[:8]}", daemon=True
        )
        self._thread.start()

    # Hot path -----------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one point; ``step`` defaults to one past this key's last step."""
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInputError(f"metric {key!r} is {number}", hint="log a finite number")
        with self._lock:
            if step is None:
                step = self._next_step.get(key, 0)
            self._next_step[key] = step + 1
            columns = self._columns
            columns.key.append(key)
            columns.value.append(number)
            columns.step.append(step)
            columns.timestamp.append(time.time())
            full = len(columns) >= MAX_BUFFER
        if full:
            self._wake.set()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Buffer params; a key already logged with another value raises at once."""
        with self._lock:
            for key, value in params.items():
                text = str(value)
                if self._params.get(key, text) != text:
                    raise InvalidInputError(
                        f"param {key!r} is already {self._params[key]!r}, not {text!r}",
                        hint="params are set once per run; log a metric or a tag to vary a value",
                    )
                self._params[key] = text
                self._pending_params[key] = text

    def set_tag(self, key: str, value: Any) -> None:
        with self._lock:
            self._pending_tags[key] = str(value)

    # Files and inputs (sent at once) ----------------------------------------------------

    def log_artifact(self, local_path: Path | str, artifact_path: str | None = None) -> list[str]:
        """Upload a file or a directory's files (each digest-checked) and record them as
        the run's artifacts; returns the artifact paths recorded."""
        from ghaf.client.files import artifact_paths, log_artifacts

        files = artifact_paths(Path(local_path), artifact_path)
        return log_artifacts(self.client, self.run_id, self.project, files)

    def log_input(self, *nodes: str) -> None:
        """Record dataset or feature versions this run used, e.g. ``dataset:transactions:3``."""
        self.client.post(f"/runs/{self.run_id}/inputs", {"nodes": list(nodes)})

    # Shipping -----------------------------------------------------------------------

    def _take(self) -> dict[str, Any] | None:
        with self._lock:
            if not (self._columns or self._pending_params or self._pending_tags):
                return None
            columns, self._columns = self._columns, _Columns()
            if len(columns) > BATCH_POINTS:  # the rest waits for the next request
                rest = self._columns
                for name in ("key", "value", "step", "timestamp"):
                    values = getattr(columns, name)
                    getattr(rest, name).extend(values[BATCH_POINTS:])
                    del values[BATCH_POINTS:]
            params, self._pending_params = self._pending_params, {}
            tags, self._pending_tags = self._pending_tags, {}
        body: dict[str, Any] = {"params": params, "tags": tags}
        if columns:
            body["metrics"] = columns.to_json()
        return body

    def _requeue(self, body: dict[str, Any]) -> None:
        """Put a batch that was not written back in front of what came since."""
        with self._lock:
            metrics = body.get("metrics")
            if metrics:
                later = self._columns
                self._columns = _Columns()
                for name in ("key", "value", "step", "timestamp"):
                    getattr(self._columns, name).extend(metrics[name])
                    getattr(self._columns, name).extend(getattr(later, name))
            self._pending_params = {**body["params"], **self._pending_params}
            self._pending_tags = {**body["tags"], **self._pending_tags}

    def flush(self) -> int:
        """Send what is buffered now; returns the points the server wrote.

        Raises:
            GhafError: the server refused the batch (it stays queued).
        """
        written = 0
        with self._send_lock:
            while (body := self._take()) is not None:
                try:
                    answer = self.client.post(f"/runs/{self.run_id}/batch", body)
                except GhafError:
                    self._requeue(body)
                    raise
                written += int(answer["points"])
        return written

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except GhafError as exc:  # queued still; end() raises it if it persists
                self._failure = exc
                _log.warning("remote run flush failed", run_id=self.run_id, error=str(exc))

    def end(self, status: str = "finished") -> None:
        """Send every buffered point, then end the run on the server.

        Raises:
            GhafError: a batch could not be written (the run is then left running).
        """
        if self.status != "running":
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self.flush()
        self.client.post(f"/runs/{self.run_id}/end", {"status": status})
        self.status = status

    def __enter__(self) -> RemoteRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end("failed" if exc_type is not None else "finished")
