"""W7 (part): a 1 GiB artifact up and down through ``ghaf server`` from a remote client.

The client (its own process, so its peak RSS is its alone) logs the file as a run's
artifact, which streams it to the server, digest-checked, into the home's artifact store
(encrypted, as the defaults are); then downloads it back, verified. The anchor is a plain
copy of the same file on the same disk, with fsync, in the same run. The server's peak
RSS is the largest of its processes'.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.artifacts import _make_file
from benchmarks.common import Figure, run_child
from benchmarks.control_plane import ghaf_server, postgres_database

SIZES = {"smoke": 32 << 20, "full": 1 << 30}
ME = "benchmarks.server_artifacts"


def _child(op: str, url: str, token: str, path: str, run_id: str = "") -> None:
    """Upload or download in a fresh process (its peak RSS is this transfer's alone)."""
    import ghaf

    client = ghaf.connect(url, token=token)
    if op == "upload":
        run = client.start_run("w7-artifacts", project="w7")
        started = time.perf_counter()
        run.log_artifact(path)
        seconds = time.perf_counter() - started
        run.end()
        print(json.dumps({"seconds": seconds, "run_id": run.run_id}))
    else:
        started = time.perf_counter()
        got = client.download_run_artifacts(run_id, Path(path).name, Path(path).parent / "dl")
        print(json.dumps({"seconds": time.perf_counter() - started, "bytes": got.stat().st_size}))
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "torch", "duckdb"))
    if heavy:
        raise RuntimeError(f"the remote client imported {heavy}")


def _server_peak_rss_mib(pid: int) -> float:
    """The largest peak RSS (VmHWM) among the server process and its workers."""
    peaks = []
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def run(size_name: str) -> list[Figure]:
    size = SIZES[size_name]
    mb = size / 1e6
    label = "1GiB" if size == 1 << 30 else f"{size >> 20}MiB"
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        root = Path(tmp)
        source = root / "blob.bin"
        _make_file(source, size)
        # The source's own write-back is no part of any measurement: without this it lands
        # on whichever of the copy and the upload the kernel happens to flush it beside.
        os.sync()
        copy, _ = run_child("benchmarks.artifacts", "copy", str(source), str(root / "copy.bin"))
        (root / "copy.bin").unlink()
        with postgres_database() as pg, ghaf_server(root / "ghaf", pg) as (url, token, pid):
            up, up_rss = run_child(ME, "upload", url, token, str(source))
            down, down_rss = run_child(ME, "download", url, token, str(source), up["run_id"])
            server_rss = _server_peak_rss_mib(pid)
        if down["bytes"] != size:
            raise RuntimeError(f"downloaded {down['bytes']} bytes of {size}")
    anchor = "copy+fsync, same disk"
    rate = mb / copy["seconds"]
    return [
        Figure(f"w7_artifact_upload_MBps_{label}", mb / up["seconds"], "MB/s", anchor, rate),
        Figure(f"w7_artifact_download_MBps_{label}", mb / down["seconds"], "MB/s", anchor, rate),
        Figure(
            f"w7_artifact_client_peak_rss_{label}",
            max(up_rss, down_rss),
            "MiB",
            None,
            None,
            higher_is_better=False,
        ),
        Figure(
            f"w7_artifact_server_peak_rss_{label}",
            server_rss,
            "MiB",
            None,
            None,
            higher_is_better=False,
        ),
    ]


if __name__ == "__main__":
    _child(*sys.argv[1:])
