"""Encrypted artifact put/get vs the unencrypted content store, same file, same run.

Each operation runs in a fresh child process so its peak RSS is its own. Target:
encrypted throughput >= 70% of unencrypted, peak RSS < 150 MiB.
"""

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
ROUNDS = {"smoke": 1, "full": 2}


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: min(len(block), size - written)]
            handle.write(chunk)
            written += len(chunk)


def _child(mode: str, op: str, source: str, root: str, digest: str = "") -> None:
    """Run one put or get in this fresh process."""
    from ghaf.artifacts.local import LocalBlobStore
    from ghaf.artifacts.store import ContentStore
    from ghaf.security.encrypted_store import EncryptedArtifactStore
    from ghaf.security.keys import LocalKeyProvider

    blobs = LocalBlobStore(Path(root) / "blobs", region="local")
    if mode == "encrypted":
        keys = LocalKeyProvider(Path(root) / "kek.json")
        keys.create()
        store: ContentStore | EncryptedArtifactStore = EncryptedArtifactStore(blobs, keys)
    else:
        store = ContentStore(blobs)
    started = time.perf_counter()
    if op == "put":
        info = store.put(Path(source))
        result = {"seconds": time.perf_counter() - started, "digest": info.digest}
    else:
        store.get(digest, Path(source))
        result = {"seconds": time.perf_counter() - started}
    print(json.dumps(result))


def run(size_name: str) -> list[Figure]:
    size = SIZES[size_name]
    mb = size / 1e6
    me = "benchmarks.encryption"
    best: dict[tuple[str, str], float] = {}
    rss: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        base = Path(tmp)
        source = base / "source.bin"
        _make_file(source, size)
        for turn in range(ROUNDS[size_name]):
            for mode in ("plain", "encrypted"):  # alternate so drift hits both alike
                root = base / f"{mode}{turn}"
                put, put_rss = run_child(me, mode, "put", str(source), str(root))
                out = base / f"out-{mode}.bin"
                get, get_rss = run_child(me, mode, "get", str(out), str(root), put["digest"])
                out.unlink()
                for op, seconds, peak in (
                    ("put", put["seconds"], put_rss),
                    ("get", get["seconds"], get_rss),
                ):
                    key = (mode, op)
                    best[key] = min(best.get(key, seconds), seconds)
                    rss[key] = max(rss.get(key, 0.0), peak)
                shutil.rmtree(root)
    anchor = "unencrypted ContentStore"
    figures = []
    for op in ("put", "get"):
        figures.append(
            Figure(
                f"encrypted_{op}_MBps", mb / best["encrypted", op], "MB/s",
                anchor, mb / best["plain", op],
            )
        )  # fmt: skip
    both = mb * 2 / (best["encrypted", "put"] + best["encrypted", "get"])
    plain = mb * 2 / (best["plain", "put"] + best["plain", "get"])
    figures.append(Figure("encrypted_put_get_MBps", both, "MB/s", anchor, plain))
    for op in ("put", "get"):
        figures.append(
            Figure(
                f"encrypted_{op}_peak_rss", rss["encrypted", op], "MiB",
                anchor, rss["plain", op], False,
            )
        )  # fmt: skip
    return figures


if __name__ == "__main__":
    _child(*sys.argv[1:])
