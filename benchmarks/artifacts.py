"""Artifact put/get throughput and peak RSS on the local backend, beside a plain copy."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, run_child

SIZES = {"smoke": 64 << 20, "full": 1 << 30}


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: min(len(block), size - written)]
            handle.write(chunk)
            written += len(chunk)


def _child(op: str, source: str, target: str, digest: str = "") -> None:
    """Run inside a fresh process so its peak RSS is this operation's alone."""
    from ghaf.artifacts.local import LocalBlobStore
    from ghaf.artifacts.store import ContentStore

    started = time.perf_counter()
    if op == "copy":
        shutil.copyfile(source, target)
        with open(target, "rb+") as handle:
            os.fsync(handle.fileno())
        result = {"seconds": time.perf_counter() - started}
    else:
        store = ContentStore(LocalBlobStore(Path(target), region="local"))
        if op == "put":
            info = store.put(Path(source))
            result = {"seconds": time.perf_counter() - started, "digest": info.digest}
        else:
            store.get(digest, Path(source))
            result = {"seconds": time.perf_counter() - started}
    print(json.dumps(result))


def _measure(size: int, base: str | None, label: str) -> list[Figure]:
    mb = size / 1e6
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        root = Path(tmp)
        source = root / "source.bin"
        _make_file(source, size)
        me = "benchmarks.artifacts"
        copy, copy_rss = run_child(me, "copy", str(source), str(root / "copy.bin"))
        (root / "copy.bin").unlink()
        put, put_rss = run_child(me, "put", str(source), str(root / "store"))
        get, get_rss = run_child(
            me, "get", str(root / "out.bin"), str(root / "store"), put["digest"]
        )
    copy_rate = mb / copy["seconds"]
    anchor = f"copy+fsync ({label})"
    return [
        Figure(f"artifact_put_MBps_{label}", mb / put["seconds"], "MB/s", anchor, copy_rate),
        Figure(f"artifact_get_MBps_{label}", mb / get["seconds"], "MB/s", anchor, copy_rate),
        Figure(f"artifact_put_peak_rss_{label}", put_rss, "MiB", anchor, copy_rss, False),
        Figure(f"artifact_get_peak_rss_{label}", get_rss, "MiB", anchor, copy_rss, False),
    ]


def run(size_name: str) -> list[Figure]:
    """On the work disk (the real case) and on tmpfs (the store's own ceiling, no disk)."""
    size = SIZES[size_name]
    figures = _measure(size, os.environ.get("GHAF_BENCH_DIR"), "disk")
    if Path("/dev/shm").is_dir():
        figures += _measure(size, "/dev/shm", "tmpfs")
    return figures


if __name__ == "__main__":
    _child(*sys.argv[1:])
