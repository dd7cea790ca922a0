"""Demo stage: the drift period arrives as live traffic.

The customer-behaviour view gets a new version over the transaction data and the drift
period's dataset version, and the first hours of the drift period are replayed in time
order through the served model, one transaction per request, a few in flight at once.
As replayed time passes, the view is materialized incrementally every ``REFRESH_HOURS``,
so the server's online lookups see the customers' recent transactions as a batch
feature pipeline would keep them: at most ``REFRESH_HOURS`` old (each refresh recomputes
the view's windows, about a second of CPU here, so they are few). The replay is
bounded: the first ``REPLAY_HOURS`` of the period (2,335 transactions).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.demo.bank_data import BankData
from ghaf.demo.runner import DemoEnv
from ghaf.demo.stage_features import (
    BEHAVIOUR,
    TRANSACTION_COLUMNS,
    behaviour_view,
    request_fields,
)
from ghaf.demo.state import Datasets, FeatureSet, Replay, Served
from ghaf.errors import BackendUnavailableError
from ghaf.platform import Platform

REPLAY_HOURS = 24
REFRESH_HOURS = 8
CONCURRENCY = 16
LOG_WAIT_S = 30.0


def replay_drift(
    env: DemoEnv, data: BankData, datasets: Datasets, features: FeatureSet, served: Served
) -> Replay:
    """Replay ``REPLAY_HOURS`` of the drift period through ``served``; see the module.

    Raises:
        BackendUnavailableError: requests failed, or the log did not get every answer.
    """
    from ghaf.data import read_dataset
    from ghaf.features.materialize import materialize
    from ghaf.features.registry import apply_definitions, get_feature_view
    from ghaf.monitoring.cbpe import roc_auc
    from ghaf.serving.predlog import now_ms

    platform, admin = env.platform, env.platform.admin()
    view = behaviour_view([datasets.transactions.node, datasets.drift.node])
    apply_definitions(platform, admin, [view], source="demo")
    _, view_version = get_feature_view(platform, BEHAVIOUR)
    start = features.online_until
    end = start + timedelta(hours=REPLAY_HOURS)
    drift = read_dataset(platform, datasets.drift.ref, columns=[*TRANSACTION_COLUMNS, "is_fraud"])
    window = _between(drift, start, end)
    records = _records(window, features)
    chunk_of = _chunk_index(window, start)
    logged_from = now_ms()
    started = time.perf_counter()
    sending = 0.0
    scores = np.full(window.num_rows, np.nan)
    refreshes = 0
    failures: list[str] = []
    for chunk in range(int(np.ceil(REPLAY_HOURS / REFRESH_HOURS))):
        if chunk:  # the feature pipeline catches up with the transactions so far
            until = start + timedelta(hours=chunk * REFRESH_HOURS)
            materialize(platform, admin, [BEHAVIOUR], until=until)
            refreshes += 1
        rows = np.flatnonzero(chunk_of == chunk)
        sent_at = time.perf_counter()
        scores[rows] = _send(served, [records[i] for i in rows], failures)
        sending += time.perf_counter() - sent_at
    seconds = time.perf_counter() - started
    answered = ~np.isnan(scores)
    ok = int(answered.sum())
    if ok < len(records):
        raise BackendUnavailableError(
            f"{len(records) - ok} of {len(records)} replayed requests failed: "
            f"{failures[0] if failures else 'no answer'}",
            hint=f"see {env.workdir / 'serve.log'}",
        )
    logged = _await_log(platform, served, logged_from, ok)
    labels = window["is_fraud"].to_numpy(zero_copy_only=False).astype(np.float64)
    truth = data.probability_of(window["tx_id"].to_numpy())
    return Replay(
        start=start,
        end=end,
        sent=len(records),
        ok=ok,
        seconds=seconds,
        send_seconds=sending,
        refreshes=refreshes,
        view=f"feature_view:{BEHAVIOUR}:{view_version}",
        logged=logged,
        logged_from_ms=logged_from,
        auc=_or_nan(roc_auc(scores, labels)),
        oracle_auc=_or_nan(roc_auc(truth, labels)),
    )


def _between(table: pa.Table, start: datetime, end: datetime) -> pa.Table:
    ts = table["event_ts"]
    mask = pc.and_(
        pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type))
    )
    return table.filter(mask)


def _records(window: pa.Table, features: FeatureSet) -> list[dict[str, Any]]:
    """One request body record per transaction: the customer id and the request fields."""
    fields = request_fields(window)
    table = pa.table(
        {
            features.entity_key: window[features.entity_key],
            **{name: fields[name] for name in features.request_fields},
        }
    )
    records: list[dict[str, Any]] = table.to_pylist()
    return records


def _chunk_index(window: pa.Table, start: datetime) -> np.ndarray:
    """Which refresh interval each transaction falls in."""
    micros = pc.cast(pc.cast(window["event_ts"], pa.timestamp("us", tz="UTC")), pa.int64())
    offset = micros.to_numpy() - int(start.timestamp() * 1_000_000)
    chunks: np.ndarray = offset // (REFRESH_HOURS * 3_600_000_000)
    return chunks


def _send(served: Served, records: list[dict[str, Any]], failures: list[str]) -> np.ndarray:
    """Each record as its own request, ``CONCURRENCY`` in flight (a thread each, on a
    kept-alive connection); the positive-class probability of each answer (NaN where it
    failed, the reason in ``failures``). The standard library's client: a tenth of the
    CPU per request of an async one, which the replay would otherwise spend."""
    import http.client
    from urllib.parse import urlsplit

    import orjson

    from ghaf.monitoring.scoring import score_vector

    url = urlsplit(served.url)
    headers = {"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"}
    path = f"/predict/{served.model}"
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []

    def one(record: dict[str, Any]) -> float:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(
                url.hostname or "127.0.0.1", url.port, timeout=30
            )
            opened.append(conn)
        try:
            conn.request("POST", path, body=orjson.dumps([record]), headers=headers)
            reply = conn.getresponse()
            body = reply.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects on the next request
            failures.append(f"{type(exc).__name__}: {exc}")
            return float("nan")
        if reply.status != 200:
            failures.append(f"{reply.status}: {body[:300]!r}")
            return float("nan")
        outputs = {k: np.asarray(v) for k, v in orjson.loads(body)["outputs"].items()}
        scored = score_vector(outputs)
        return float(scored[0][0]) if scored is not None else float("nan")

    try:
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="demo-replay") as pool:
            return np.fromiter(pool.map(one, records), dtype=np.float64, count=len(records))
    finally:
        for conn in opened:
            conn.close()


def _await_log(platform: Platform, served: Served, since_ms: float, expected: int) -> int:
    """Wait (bounded) until the prediction log holds ``expected`` rows of the served
    version since ``since_ms``; how many it holds.

    Raises:
        BackendUnavailableError: fewer arrived within ``LOG_WAIT_S``.
    """
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows

    keys = prediction_log_keys(platform)
    deadline = time.monotonic() + LOG_WAIT_S
    rows = 0
    while True:
        windows = read_prediction_windows(
            served.log_dir, served.model, start_ms=since_ms, features=False, keys=keys
        )
        found = windows.get(served.version)
        rows = int(found.ts.size) if found is not None else 0
        if rows >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if rows < expected:
        raise BackendUnavailableError(
            f"the prediction log holds {rows} of {expected} answered requests",
            hint=f"see {served.log_dir}",
        )
    return rows


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
