"""Issue 21's monitoring cost: do scheduled monitors keep up with 1,000 predictions/s logged
by a served model, and what share of one core does the monitor process take?

A home with a registered, approved binary classifier (8 features; its training data a
dataset version in its lineage) served by ``ghaf serve bench@champion --log-dir``; wrk
sends 1-row OIP requests paced at about 1,000/s (each of 40 connections waits 40 ms less
the median latency a probe measured after each answer; a Lua function draws each row).
``ghaf monitor run --loop --every 1s`` runs the deployment's monitor every INTERVAL over
a window of INTERVAL: feature drift against the training profile, data quality,
prediction drift, labels joined by request id (none arrive here: the join still runs),
CBPE, results stored.

The monitor's CPU is its process's own (``/proc/PID/stat`` user + system) over the wall
time wrk ran, so start-up is apart; the training profile and the reference scores are
made once per model version, by a warm-up run before the loop starts (its cost is shown
apart too). Keeping up: the slowest run against the interval, the largest lag from a
window's end to its stored results, and the share of logged predictions the windows
covered (they tile the log, so every prediction is judged once).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import Figure
from benchmarks.serving import THREADS_ENV, _free_port, _parse_wrk, _start, _stop

SIZES = {"smoke": {"seconds": 20, "interval": 5}, "full": {"seconds": 120, "interval": 15}}
CONNECTIONS = 40
RATE = 1000.0
FEATURES = [f"v{i}" for i in range(8)]
BOUND = 10.0
"""The acceptance bound: % of one core."""
PACED_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local function gauss()
  local u = 1 - math.random()
  return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * math.random())
end
function delay() return DELAY_MS end
request = function()
  local v = {}
  for i = 1, WIDTH do v[i] = string.format("%.5f", gauss()) end
  local body = '{"inputs":[{"name":"input","shape":[1,WIDTH],"datatype":"FP32","data":['
    .. table.concat(v, ",") .. ']}]}'
  return wrk.format(nil, nil, nil, body)
end
"""
"""Each connection waits DELAY_MS after each answer; each request is a fresh N(0, 1) row."""


def _seed(home: Path, workdir: Path) -> None:
    """The home, the training data, the registered and approved model, the deployment."""
    import pyarrow as pa
    from sklearn.linear_model import LogisticRegression

    from ghaf.access.tokens import verify_token
    from ghaf.data import write_dataset
    from ghaf.home import init_home
    from ghaf.models import save_model
    from ghaf.models.base import schema_to_json
    from ghaf.registry import approve_model_version, register_model, set_alias
    from ghaf.serving.deployments import record_deployment
    from ghaf.settings import load_settings
    from ghaf.testing.people import mint, person

    rng = np.random.default_rng(7)
    x = rng.normal(size=(20_000, len(FEATURES))).astype(np.float32)
    p = 1 / (1 + np.exp(-(x @ np.linspace(-1, 1, len(FEATURES)) - 0.5)))
    y = (rng.random(len(x)) < p).astype(np.int64)
    with init_home(load_settings(home=home)) as platform:
        admin = platform.admin()
        table = pa.table({**{n: x[:, i] for i, n in enumerate(FEATURES)}, "label": y})
        stored = write_dataset(platform, admin, "bench-train", table, source="benchmark")
        save_model(LogisticRegression().fit(x, y), workdir / "model")
        inputs = pa.schema([(n, pa.float32()) for n in FEATURES])
        signature = {
            "inputs": schema_to_json(inputs),
            "outputs": schema_to_json(pa.schema([("output", pa.float64())])),
        }
        version = register_model(
            platform, admin, "bench", workdir / "model", signature=signature, lineage=[stored.node]
        )
        steward = person(platform, "bench-steward", ["project_admin"])
        token = mint(
            platform,
            "bench-approver",
            ["model_approver"],
            bind_on=platform.default_project,
            minted_by=steward,
        )
        approve_model_version(platform, verify_token(platform, token, source="bench"), version.ref)
        set_alias(platform, admin, "bench", "champion", version.version)
        record_deployment(platform, admin, "bench", ["bench@champion"])


def _wrk_paced(url: str, seconds: int, workdir: Path, delay_ms: int) -> dict[str, float]:
    """wrk with each connection waiting ``delay_ms`` between 1-row requests (rows drawn
    from N(0, 1)): ``CONNECTIONS * 1000 / (delay_ms + latency)`` requests/s."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    script = workdir / "paced.lua"
    script.write_text(
        PACED_LUA.replace("DELAY_MS", str(delay_ms)).replace("WIDTH", str(len(FEATURES)))
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return _parse_wrk(out)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Lines:
    """The monitor's JSON lines (one per run), each with the time it arrived."""

    def __init__(self, stream: Any) -> None:
        self.runs: list[tuple[float, dict[str, Any]]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            if line.startswith("{"):
                self.runs.append((time.time(), json.loads(line)))

    def join(self) -> None:
        self._thread.join(30)


def _warm(home: Path, interval: int) -> float:
    """One run in this process makes the training profile and reference scores (once per
    version); then the schedule restarts with its first window ending now. Seconds taken."""
    from ghaf.monitoring.monitors import run_monitor
    from ghaf.monitoring.schedule import schedule_monitor
    from ghaf.platform import Platform
    from ghaf.settings import load_settings

    with Platform(load_settings(home=home)) as platform:
        admin = platform.admin()
        schedule_monitor(platform, admin, "bench", every=interval, window=interval)
        started = time.perf_counter()
        run = run_monitor(platform, admin, "bench")
        took = time.perf_counter() - started
        if not run.results or run.results[0].status not in ("ok", "breached"):
            raise RuntimeError(f"the warm-up run found nothing to judge: {run}")
        schedule_monitor(platform, admin, "bench", every=interval, window=interval)
    return took


def _logged(home: Path, log_dir: Path, start_ms: float, end_ms: float) -> int:
    from ghaf.platform import Platform
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows
    from ghaf.settings import load_settings

    with Platform(load_settings(home=home)) as platform:  # the log is encrypted with its KEK
        found = read_prediction_windows(
            log_dir,
            "bench",
            start_ms=start_ms,
            end_ms=end_ms,
            features=False,
            keys=prediction_log_keys(platform),
        )
    return sum(w.rows for w in found.values())


def run(size: str) -> list[Figure]:
    seconds, interval = int(SIZES[size]["seconds"]), int(SIZES[size]["interval"])
    with tempfile.TemporaryDirectory(prefix="ghaf-bench-monitoring-") as tmp:
        workdir = Path(tmp)
        home, log_dir = workdir / "home", workdir / "home" / "predictions"
        _seed(home, workdir)
        port = _free_port()
        serve = [sys.executable, "-m", "ghaf", "--home", str(home), "serve", "bench@champion",
                 "--log-dir", str(log_dir), "--insecure-dev", "--port", str(port)]  # fmt: skip
        server = _start(serve, port, timeout=300, quiet=True)
        url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
        try:
            # Warm the server (and give the warm-up run rows), then pace at RATE: each
            # connection waits the rest of its share of a second after its answer.
            probe = _wrk_paced(url, 3, workdir, int(CONNECTIONS * 1000 / RATE))
            delay_ms = max(1, round(CONNECTIONS * 1000 / RATE - probe["p50"]))
            time.sleep(1.0)  # the logger's last flush
            warm_s = _warm(home, interval)
            span = f"{seconds + 2 * interval + 6}s"
            loop = [sys.executable, "-m", "ghaf", "--home", str(home), "monitor", "run", "--loop",
                    "--every", "1s", "--for", span, "--output", "json"]  # fmt: skip
            monitor = subprocess.Popen(
                loop, stdout=subprocess.PIPE, text=True, env={**os.environ, **THREADS_ENV}
            )
            lines = _Lines(monitor.stdout)
            deadline = time.monotonic() + 120
            while not lines.runs and time.monotonic() < deadline:  # started and ran once
                time.sleep(0.2)
            startup_cpu = _cpu_seconds(monitor.pid)
            cpu0, t0 = startup_cpu, time.monotonic()
            load = _wrk_paced(url, seconds, workdir, delay_ms)
            cpu1, t1 = _cpu_seconds(monitor.pid), time.monotonic()
            monitor.wait(timeout=2 * interval + 60)
            lines.join()
        finally:
            _stop(server)
        runs = [doc for _, doc in lines.runs]
        results = [r for doc in runs for r in doc["results"]]
        from datetime import datetime

        ends = [datetime.fromisoformat(doc["window_end"]).timestamp() for doc in runs]
        starts = [datetime.fromisoformat(doc["window_start"]).timestamp() for doc in runs]
        judged = sum(r["predictions"] for r in results)
        logged = _logged(home, log_dir, min(starts) * 1000.0, max(ends) * 1000.0)
        lag = max(at - end for (at, _), end in zip(lines.runs, ends, strict=True))
        slowest = max(doc["seconds"] for doc in runs)
        share = 100.0 * (cpu1 - cpu0) / (t1 - t0)
        anchor = f"the acceptance bound ({BOUND:g}% of one core)"
        tag = f"monitor every {interval} s over {interval} s windows"
        return [
            Figure("monitoring: predictions logged per second (paced 1-row OIP requests)",
                   load["rps"], "predictions/s", "the acceptance rate", RATE),
            Figure(f"monitoring: CPU of the scheduled monitor process, {tag}, while "
                   f"{load['rps']:.0f} predictions/s are logged", share, "% of one core",
                   anchor, BOUND, higher_is_better=False),
            Figure("monitoring: the monitor process's start-up and first run",
                   startup_cpu, "CPU s", higher_is_better=False),
            Figure("monitoring: warm-up run (training profile and reference scores, once "
                   "per model version)", warm_s, "s", higher_is_better=False),
            Figure(f"monitoring: slowest monitor run ({len(runs)} runs)", slowest, "s",
                   "the interval", float(interval), higher_is_better=False),
            Figure("monitoring: largest lag from a window's end to its stored results", lag,
                   "s", "the interval", float(interval), higher_is_better=False),
            Figure("monitoring: logged predictions judged by the monitor's windows",
                   100.0 * judged / max(logged, 1), "%", "every prediction", 100.0),
            Figure("monitoring: request errors under the paced load", load["errors"], "count",
                   higher_is_better=False),
        ]  # fmt: skip


if __name__ == "__main__":
    for figure in run(sys.argv[1] if len(sys.argv) > 1 else "smoke"):
        print(figure.to_json(), flush=True)
