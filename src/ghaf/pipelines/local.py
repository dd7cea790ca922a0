"""The local executor: each step attempt in its own process (forkserver), killed on demand."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ghaf.artifacts.scratch import process_scratch_dir, release, remove_scratch_of
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
        self._logs: dict[Path, Path] = {}
        """Per home: the scratch directory holding the steps' logs (what they print)."""

    def _log_dir(self, task: StepTask) -> Path:
        home = Path(task.settings["home"])
        if home not in self._logs:
            self._logs[home] = process_scratch_dir(home, "pipeline-logs-")
        return self._logs[home]

    def submit(self, task: StepTask) -> LocalHandle:
        receive, send = _CONTEXT.Pipe(duplex=False)
        log_path = self._log_dir(task) / f"{task.step_run_id}-{task.attempt}.log"
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
            _forget_scratch(handle)
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
        _forget_scratch(handle)

    def close(self) -> None:
        for directory in self._logs.values():
            release(directory)
        self._logs.clear()


def _forget_scratch(handle: LocalHandle) -> None:
    """A worker that was killed ran no cleanup: remove the scratch directory it left (its
    decrypted inputs) now that it is gone."""
    if handle.pid is not None and handle.process.exitcode is not None:
        remove_scratch_of(Path(handle.task.settings["home"]), handle.pid)
