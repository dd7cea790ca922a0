"""The local executor: each step attempt in its own process (forkserver), killed on demand."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ghaf.pipelines.worker import StepResult, StepTask, run_in_process

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["ghaf.pipelines.worker", "ghaf.platform", "pyarrow.parquet"])


@dataclass
class LocalHandle:
    """A running attempt: its process, the pipe its result comes on, its log file."""

    task: StepTask
    process: Any
    conn: Connection
    log_path: Path

    @property
    def pid(self) -> int | None:
        return int(self.process.pid) if self.process.pid is not None else None


class LocalExecutor:
    """Runs attempts in local processes, up to ``max_workers`` at once."""

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.capacity = max_workers or max(os.cpu_count() or 1, 2)
        self._logs = Path(tempfile.mkdtemp(prefix="ghaf-pipeline-logs-"))

    def submit(self, task: StepTask) -> LocalHandle:
        receive, send = _CONTEXT.Pipe(duplex=False)
        log_path = self._logs / f"{task.step_run_id}-{task.attempt}.log"
        process = _CONTEXT.Process(
            target=run_in_process, args=(send, task, str(log_path)), daemon=True
        )
        process.start()
        send.close()
        return LocalHandle(task, process, receive, log_path)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, StepResult]]:
        by_sentinel = {h.process.sentinel: h for h in handles}
        ready = wait(list(by_sentinel), timeout=timeout) if handles else []
        done: list[tuple[Any, StepResult]] = []
        for sentinel in ready:
            handle = by_sentinel[sentinel]
            result = self._collect(handle)
            done.append((handle, result))
        return done

    def _collect(self, handle: LocalHandle) -> StepResult:
        result: StepResult | None = None
        try:
            if handle.conn.poll():
                result = handle.conn.recv()
        except (EOFError, OSError):
            result = None
        handle.process.join(5)
        handle.conn.close()
        log = self._read_log(handle)
        if result is None:
            code = handle.process.exitcode
            reason = (
                f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
            )
            result = StepResult(ok=False, error=f"worker died ({reason})", failure="killed")
        result.log = log
        return result

    def _read_log(self, handle: LocalHandle) -> str:
        try:
            text = handle.log_path.read_text(errors="replace")[-1_000_000:]
            handle.log_path.unlink()
        except OSError:
            return ""
        return text

    def cancel(self, handle: Any) -> None:
        handle.process.kill()
        handle.process.join(5)
        handle.conn.close()
        handle.log_path.unlink(missing_ok=True)

    def close(self) -> None:
        for path in self._logs.glob("*"):
            path.unlink(missing_ok=True)
        self._logs.rmdir()
