"""The Ray executor: each step attempt a Ray task with the step's resource request."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from ghaf.errors import BackendUnavailableError, MissingDependencyError
from ghaf.pipelines.worker import StepResult, StepTask, execute


def _remote_execute(task: StepTask) -> StepResult:
    return execute(task)


CLUSTER_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _keep_ray_on_loopback() -> None:
    """Keep this driver's Ray on 127.0.0.1 unless the user set ``CLUSTER_VARIABLE`` to 1.

    With the variable at its Linux default (1) Ray swaps 127.0.0.1 for the machine's
    routable address, binds services beyond loopback, and a driver told to join
    127.0.0.1:PORT waits for minutes on an address the head never listens on. Ray reads
    the variable once, at import: when something imported ``ray`` first, the constant it
    derived is corrected as well (``ray._private.services`` reads it at call time).
    """
    os.environ.setdefault(CLUSTER_VARIABLE, "0")
    if os.environ[CLUSTER_VARIABLE] != "0":
        return
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        constants.__dict__["ENABLE_RAY_CLUSTER"] = False


def connect_ray(address: str | None = None) -> Any:
    """The ``ray`` module, connected to ``address`` or to a new local loopback-only node.

    Shared by the pipeline executor and the Ray Tune search, so both keep Ray on
    127.0.0.1 and refuse the same way when the cluster cannot be reached.

    Raises:
        MissingDependencyError: ray is not installed.
        BackendUnavailableError: the cluster at ``address`` (or a new local one) failed.
    """
    _keep_ray_on_loopback()
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray") from exc
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        options.update(_node_ip_address="127.0.0.1", include_dashboard=False)
    # ray.init installs Ray's own SIGTERM handler (it logs and ends the process), over the
    # one a command set to leave cleanly (sigterm_exits: remove its Serve application,
    # its scratch directory). The command's is put back once Ray is up.
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BackendUnavailableError(
            f"cannot connect to the Ray cluster at {address or 'a new local node'}: {exc}",
            hint="start one with `ray start --head --node-ip-address=127.0.0.1` "
            "and set GHAF_RAY_ADDRESS",
        ) from exc
    finally:
        if callable(handler):
            signal.signal(signal.SIGTERM, handler)
    return ray


class RayExecutor:
    """Runs attempts as Ray tasks on the cluster at ``address`` (``ray://...``, ``HOST:PORT``
    or ``auto``); ``None`` starts a local single-node Ray in this process."""

    name = "ray"

    def __init__(self, address: str | None = None, *, capacity: int | None = None) -> None:
        ray = connect_ray(address)
        self._ray: Any = ray
        total = int(self._ray.cluster_resources().get("CPU", 1))
        self.capacity = capacity or max(total, 1)
        self._remote = ray.remote(max_retries=0)(_remote_execute)

    def submit(self, task: StepTask) -> Any:
        res = task.step.options.resources
        options: dict[str, Any] = {"num_cpus": res.cpu, "num_gpus": res.gpu}
        if res.memory_mb:
            options["memory"] = res.memory_mb * 1024 * 1024
        return self._remote.options(**options).remote(task)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, StepResult]]:
        if not handles:
            return []
        ready, _ = self._ray.wait(handles, num_returns=len(handles), timeout=timeout)
        done: list[tuple[Any, StepResult]] = []
        for ref in ready:
            try:
                result: StepResult = self._ray.get(ref)
            except self._ray.exceptions.RayError as exc:
                # The worker died (killed, out of memory, node lost): the runner retries.
                result = StepResult(ok=False, error=f"ray worker failed: {exc}", failure="killed")
            done.append((ref, result))
        return done

    def cancel(self, handle: Any) -> None:
        self._ray.cancel(handle, force=True)

    def close(self) -> None:
        """Leave the cluster (a local node started by ``init`` stops with it)."""
        if self._ray.is_initialized():
            self._ray.shutdown()
