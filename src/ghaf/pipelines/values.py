"""Step outputs to artifacts and back: Parquet, NumPy, JSON, bytes, files and directories."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.artifacts.base import ArtifactStore
from ghaf.errors import UserCodeError

KINDS = ("arrow", "pandas", "numpy", "json", "bytes", "file", "dir")


def _deterministic_tar(directory: Path) -> bytes:
    """A tar of ``directory`` that depends only on names and contents (same input, same digest)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def encode(value: Any, step: str) -> tuple[str, bytes]:
    """Turn a step's return value into ``(kind, bytes)``.

    Raises:
        UserCodeError: the value has a type Ghaf does not store.
    """
    if isinstance(value, pa.Table):
        sink = io.BytesIO()
        pq.write_table(value, sink)
        return "arrow", sink.getvalue()
    if type(value).__name__ == "DataFrame" and hasattr(value, "to_parquet"):
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(value, preserve_index=False), sink)
        return "pandas", sink.getvalue()
    if isinstance(value, np.ndarray):
        sink = io.BytesIO()
        np.save(sink, value, allow_pickle=False)
        return "numpy", sink.getvalue()
    if isinstance(value, bytes):
        return "bytes", value
    if isinstance(value, Path):
        if value.is_dir():
            return "dir", _deterministic_tar(value)
        if value.is_file():
            return "file", value.read_bytes()
        raise UserCodeError(f"step {step} returned {value}, which does not exist")
    try:
        return "json", json.dumps(value, sort_keys=True, allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise UserCodeError(
            f"step {step} returned a {type(value).__name__}, which Ghaf cannot store",
            hint="return an Arrow table, DataFrame, NumPy array, JSON, bytes or a Path",
        ) from exc


def store(artifacts: ArtifactStore, value: Any, step: str) -> tuple[str, str, int]:
    """Store a step's output; returns ``(digest, kind, size)``."""
    kind, data = encode(value, step)
    info = artifacts.put_bytes(data)
    return info.digest, kind, info.size


def load(artifacts: ArtifactStore, digest: str, kind: str, scratch: Path) -> Any:
    """Read a stored output back as the value the downstream step receives."""
    data = artifacts.read_bytes(digest)
    if kind == "arrow":
        return pq.read_table(io.BytesIO(data))
    if kind == "pandas":
        return pq.read_table(io.BytesIO(data)).to_pandas()
    if kind == "numpy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "bytes":
        return data
    if kind == "json":
        return json.loads(data)
    target = scratch / digest[:16]
    if kind == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target
    if kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(target, filter="data")
        return target
    raise UserCodeError(f"unknown output kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
