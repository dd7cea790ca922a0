"""kill -9 in the middle of a put leaves no partial blob visible and the store consistent."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.store import ContentStore

WRITER = """
import sys, time
from pathlib import Path
from ghaf.artifacts.local import LocalBlobStore
from ghaf.artifacts.store import ContentStore

class Slow:
    def __init__(self):
        self.sent = 0
    def read(self, n):
        if self.sent == 0:
            print("started", flush=True)
        if self.sent >= 64 << 20:
            return b""
        self.sent += 1 << 20
        time.sleep(0.01)
        return b"x" * (1 << 20)

ContentStore(LocalBlobStore(Path(sys.argv[1]))).put(Slow())
print("finished", flush=True)
"""


def test_kill_9_mid_put_leaves_nothing_visible(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = ContentStore(LocalBlobStore(root))
    kept = store.put_bytes(b"already stored")
    for _ in range(3):
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "started"
            time.sleep(0.2)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
    # Only the committed artifact is visible, and it still verifies.
    assert list(store.digests()) == [kept.digest]
    assert store.read_bytes(kept.digest) == b"already stored"
    # The partial writes are only temp files, which the store can sweep.
    assert LocalBlobStore(root).clean_temp(older_than_s=0) >= 1
    assert list((root / ".tmp").iterdir()) == []


def test_round_trip_any_bytes(tmp_path: Path) -> None:
    store = ContentStore(LocalBlobStore(tmp_path / "prop"))

    @settings(max_examples=40, deadline=None)
    @given(data=st.binary(max_size=300_000) | st.integers(0, 3).map(lambda k: b"z" * (k << 22)))
    def round_trip(data: bytes) -> None:
        info = store.put_bytes(data)
        assert info.digest == hashlib.sha256(data).hexdigest()
        assert info.size == len(data)
        assert store.read_bytes(info.digest) == data

    round_trip()
