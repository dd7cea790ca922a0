"""Steps: typed Python functions whose inputs and outputs are stored artifacts."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

from ghaf.errors import InvalidInputError


@dataclass(frozen=True)
class Resources:
    """What one attempt of a step asks for (a Ray task's resource request)."""

    cpu: float = 1.0
    gpu: float = 0.0
    memory_mb: int | None = None


@dataclass(frozen=True)
class StepOptions:
    """Retries with exponential backoff, a per-attempt timeout, caching and resources."""

    retries: int = 0
    backoff_s: float = 0.5
    timeout_s: float | None = None
    cache: bool = True
    resources: Resources = field(default_factory=Resources)


def _code_digest(fn: Callable[..., Any]) -> str:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):  # no source (built-in, REPL): fall back to the bytecode
        source = repr(fn.__code__.co_code)
    return hashlib.sha256(source.encode()).hexdigest()


def _load_step(module: str, qualname: str) -> Step:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, Step):
        raise TypeError(f"{module}.{qualname} is not a Ghaf step")
    return target


class Step:
    """A function declared with :func:`step`; call :meth:`fn` directly to run it in-process."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        self.fn = fn
        self.options = options
        self.name = fn.__name__
        self.code_digest = _code_digest(fn)
        self.parameters = tuple(inspect.signature(fn).parameters)
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.__qualname__ = fn.__qualname__

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference where importable, so workers load the same code; scripts (__main__)
        # travel by value (cloudpickle does that for Ray).
        if self.fn.__module__ == "__main__":
            return (Step, (self.fn, self.options))
        return (_load_step, (self.fn.__module__, self.fn.__qualname__))


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    retries: int = 0,
    backoff_s: float = 0.5,
    timeout_s: float | None = None,
    cache: bool = True,
    cpu: float = 1.0,
    gpu: float = 0.0,
    memory_mb: int | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    retries: int = 0,
    backoff_s: float = 0.5,
    timeout_s: float | None = None,
    cache: bool = True,
    cpu: float = 1.0,
    gpu: float = 0.0,
    memory_mb: int | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Declare a pipeline step.

    A step's return value is stored as an artifact: an Arrow table or pandas DataFrame
    (Parquet), a NumPy array, JSON-able values, bytes, or a ``Path`` to a file or
    directory (e.g. a saved model). A parameter named ``workdir`` receives a fresh
    scratch directory, removed after the output is stored. A step that acts on the
    platform (tracks a run, registers a model) takes it and the run's actor from
    :func:`ghaf.pipelines.current_step`.

    Args:
        retries: further attempts after a failure (an exception, a timeout, a killed worker).
        backoff_s: wait before retry ``n`` is ``backoff_s * 2**(n-1)``.
        timeout_s: limit per attempt; the worker is killed when it runs over.
        cache: reuse an earlier output when code, parameters and input digests match.
        cpu, gpu, memory_mb: the resource request (used by the Ray executor).
    """
    if retries < 0 or backoff_s < 0 or (timeout_s is not None and timeout_s <= 0):
        raise InvalidInputError(
            "retries and backoff_s must be >= 0 and timeout_s > 0",
            hint="e.g. @step(retries=2, timeout_s=600)",
        )
    options = StepOptions(retries, backoff_s, timeout_s, cache, Resources(cpu, gpu, memory_mb))

    def wrap(function: Callable[..., Any]) -> Step:
        return Step(function, options)

    return wrap(fn) if fn is not None else wrap
