"""Shadow comparison: how a shadow variant's answers compare with the live ones, per window.

Shadow and live answers to the same request share its request id in the prediction
log. Per window of request time: how many pairs, the agreement rate (the same top class
of the first output, or the same value for a one-column output), the two-sample KS
distance between the live and the shadow scores (the first output's last column, with
:func:`ghaf.monitoring.stats.two_sample`), and mean/p99 latency of each side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.monitoring.stats import two_sample


def _scores(outputs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(top class or value, score) of each request's first output's first row."""
    top = np.empty(len(outputs))
    score = np.empty(len(outputs))
    for i, mapping in enumerate(outputs):
        rows = next(iter(dict(mapping).values())) if mapping else [[np.nan]]
        first = np.asarray(rows[0] if rows else [np.nan], dtype=np.float64)
        top[i] = float(np.argmax(first)) if first.size > 1 else float(first[0])
        score[i] = float(first[-1])
    return top, score


def compare_shadows(log: pa.Table, model: str, window_s: float = 3600.0) -> list[dict[str, Any]]:
    """One row per (shadow version, window) of ``model``'s log: pairs, agreement rate,
    KS distance and p-value of the scores, mean and p99 latency of live and shadow."""
    rows = (
        log.filter(pc.equal(log.column("model"), model))
        .select(["request_id", "ts", "version", "latency_ms", "outputs", "shadow"])
        .to_pylist()
    )
    live = {r["request_id"]: r for r in rows if not r["shadow"]}
    pairs: dict[tuple[str, int], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for shadow in (r for r in rows if r["shadow"]):
        answered = live.get(shadow["request_id"])
        if answered is not None:
            window = int(answered["ts"] / 1000.0 // window_s)
            pairs.setdefault((shadow["version"], window), []).append((answered, shadow))
    report = []
    for (version, window), matched in sorted(pairs.items()):
        live_top, live_score = _scores([a["outputs"] for a, _ in matched])
        shadow_top, shadow_score = _scores([s["outputs"] for _, s in matched])
        ok = ~(np.isnan(live_score) | np.isnan(shadow_score))
        distance = (
            two_sample(np.sort(live_score[ok]), np.sort(shadow_score[ok])) if ok.any() else None
        )
        live_ms = np.array([a["latency_ms"] for a, _ in matched])
        shadow_ms = np.array([s["latency_ms"] for _, s in matched])
        report.append(
            {
                "shadow": version,
                "window_start_s": window * window_s,
                "pairs": len(matched),
                "agreement": float(np.mean(live_top == shadow_top)),
                "ks_statistic": distance.ks_statistic if distance else None,
                "ks_pvalue": distance.ks_pvalue if distance else None,
                "live_latency_ms": {"mean": float(live_ms.mean()),
                                    "p99": float(np.quantile(live_ms, 0.99))},
                "shadow_latency_ms": {"mean": float(shadow_ms.mean()),
                                      "p99": float(np.quantile(shadow_ms, 0.99))},
            }
        )  # fmt: skip
    return report
