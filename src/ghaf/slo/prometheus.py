"""SLOs as Prometheus recording and alerting rules (Sloth/Pyrra style), and promtool tests.

The alert conditions are the engine's (:func:`ghaf.slo.engine.evaluate`): both windows'
error ratios above ``factor * budget``, the long window's traffic at least the minimum,
held for ``for:``. :func:`promtool_test` writes the input series and expected alerts of a
replayed scenario so ``promtool test rules`` checks the rules against Ghaf's verdicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import yaml

from ghaf.errors import InvalidInputError
from ghaf.serving.metrics import LATENCY_BUCKETS
from ghaf.slo.base import SLO, duration
from ghaf.slo.engine import EventSeries, evaluate

ALERT = "ErrorBudgetBurn"
REQUESTS = "ghaf_requests_total"
LATENCY = "ghaf_request_seconds"


def _selector(slo: SLO, extra: str = "") -> str:
    labels = f'model="{slo.deployment}"' + (f",{extra}" if extra else "")
    return "{" + labels + "}"


def latency_bound(slo: SLO) -> str:
    """The ``le`` bucket bound of a latency SLO's threshold, as the rules select it."""
    seconds = (slo.threshold_ms or 0.0) / 1000.0
    for bound in LATENCY_BUCKETS:
        if abs(bound - seconds) < 1e-12:
            return repr(bound)
    raise InvalidInputError(
        f"SLO {slo.name!r}: threshold_ms {slo.threshold_ms} is not a bucket of {LATENCY}",
        hint="use one of " + ", ".join(f"{b * 1000:g}" for b in LATENCY_BUCKETS) + " ms",
    )


def _queries(slo: SLO, window: str) -> tuple[str, str]:
    """(bad events, total events) rates over ``window`` for ``slo``'s SLI."""
    if slo.sli == "availability":
        total = f"sum(rate({REQUESTS}{_selector(slo)}[{window}]))"
        errors = _selector(slo, 'code=~"5.."')
        bad = f"sum(rate({REQUESTS}{errors}[{window}]))"
        return bad, total
    if slo.sli == "latency":
        le = latency_bound(slo)
        total = f"sum(rate({LATENCY}_count{_selector(slo)}[{window}]))"
        fast = _selector(slo, f'le="{le}"')
        good = f"sum(rate({LATENCY}_bucket{fast}[{window}]))"
        return f"({total} - {good})", total
    raise InvalidInputError(
        f"SLO {slo.name!r} measures {slo.sli!r}, which has no Prometheus series",
        hint="export availability and latency SLOs; Ghaf evaluates quality SLOs itself",
    )


def _windows(slo: SLO) -> list[int]:
    return sorted({s for w in slo.windows for s in (w.long_s, w.short_s)})


def rule_groups(slos: Iterable[SLO]) -> dict[str, Any]:
    """The rules file (``groups:``) for ``slos``: one recording and one alerting group each."""
    groups: list[dict[str, Any]] = []
    for slo in slos:
        labels = {"slo": slo.name, "deployment": slo.deployment}
        recording: list[dict[str, Any]] = []
        for seconds in _windows(slo):
            window = duration(seconds)
            bad, total = _queries(slo, window)
            recording.append(
                {
                    "record": f"slo:sli_error:ratio_rate{window}",
                    "expr": f"{bad} / {total}",
                    "labels": dict(labels),
                }
            )
        for seconds in sorted({w.long_s for w in slo.windows}):
            window = duration(seconds)
            total = _queries(slo, window)[1].replace("rate(", "increase(", 1)
            recording.append(
                {
                    "record": f"slo:sli_requests:increase{window}",
                    "expr": total,
                    "labels": dict(labels),
                }
            )
        alerts = []
        match = f'{{slo="{slo.name}"}}'
        for w in slo.windows:
            long_w, short_w = duration(w.long_s), duration(w.short_s)
            limit = slo.threshold(w)
            expr = (
                f"slo:sli_error:ratio_rate{long_w}{match} > {limit!r}"
                f" and slo:sli_error:ratio_rate{short_w}{match} > {limit!r}"
                f" and slo:sli_requests:increase{long_w}{match} >= {slo.min_requests(w)!r}"
            )
            alerts.append(
                {
                    "alert": ALERT,
                    "expr": expr,
                    "for": duration(w.for_s),
                    "labels": alert_labels(slo, long_w, short_w, w.severity),
                    "annotations": alert_annotations(slo, w.factor, long_w),
                }
            )
        groups.append({"name": f"slo-{slo.name}-recording", "rules": recording})
        groups.append({"name": f"slo-{slo.name}-alerts", "rules": alerts})
    return {"groups": groups}


def alert_labels(slo: SLO, long_w: str, short_w: str, severity: str) -> dict[str, str]:
    """The labels an ErrorBudgetBurn alert carries (the same in Ghaf and Prometheus)."""
    return {
        "slo": slo.name,
        "deployment": slo.deployment,
        "long_window": long_w,
        "short_window": short_w,
        "severity": severity,
    }


def alert_annotations(slo: SLO, factor: float, long_w: str) -> dict[str, str]:
    return {
        "summary": (
            f"SLO {slo.name} of {slo.deployment} burns its {slo.window_days}-day error "
            f"budget over {factor:g}x the sustainable rate ({long_w} window)"
        )
    }


def export_rules(slos: Sequence[SLO]) -> str:
    """The rules file as YAML text, for ``promtool check rules`` and Prometheus."""
    return yaml.safe_dump(rule_groups(slos), sort_keys=False, width=200)


def series_notation(cumulative: np.ndarray) -> str:
    """Counter samples in promtool's expanding notation (``a+bxn`` runs of one slope)."""
    parts = []
    i, n = 0, len(cumulative)
    while i < n:
        if i + 1 == n:
            parts.append(f"{int(cumulative[i])}")
            break
        slope = int(cumulative[i + 1] - cumulative[i])
        j = i + 1
        while j + 1 < n and cumulative[j + 1] - cumulative[j] == slope:
            j += 1
        parts.append(f"{int(cumulative[i])}+{slope}x{j - i}")
        i = j + 1
    return " ".join(parts)


def _input_series(slo: SLO, series: EventSeries) -> list[dict[str, str]]:
    """Counters whose per-bucket increases are ``series``' counts (sample 0 is zero)."""
    good = np.concatenate([[0], np.cumsum(series.good)])
    bad = np.concatenate([[0], np.cumsum(series.bad)])
    total = good + bad
    if slo.sli == "availability":
        name = REQUESTS
        return [
            {"series": f'{name}{{model="{slo.deployment}",code="200"}}',
             "values": series_notation(good)},
            {"series": f'{name}{{model="{slo.deployment}",code="500"}}',
             "values": series_notation(bad)},
        ]  # fmt: skip
    le = latency_bound(slo)
    return [
        {"series": f'{LATENCY}_bucket{{model="{slo.deployment}",le="{le}"}}',
         "values": series_notation(good)},
        {"series": f'{LATENCY}_count{{model="{slo.deployment}"}}',
         "values": series_notation(total)},
    ]  # fmt: skip


def expected_alerts(slo: SLO, series: EventSeries, index: int) -> list[dict[str, Any]]:
    """The alerts Ghaf's engine has firing after bucket ``index``, in promtool's shape."""
    out = []
    for e in evaluate(slo, series):
        if e.firing[index]:
            w = e.window
            long_w, short_w = duration(w.long_s), duration(w.short_s)
            out.append(
                {
                    "exp_labels": alert_labels(slo, long_w, short_w, w.severity),
                    "exp_annotations": alert_annotations(slo, w.factor, long_w),
                }
            )
    return out


def promtool_test(
    slo: SLO, series: EventSeries, indices: Sequence[int], rule_file: str
) -> dict[str, Any]:
    """A ``promtool test rules`` file asserting the engine's verdicts after each bucket
    in ``indices`` (bucket ``i`` ends ``(i + 1) * step`` after the series starts)."""
    tests = [
        {
            "interval": duration(series.step),
            "input_series": _input_series(slo, series),
            "alert_rule_test": [
                {
                    "eval_time": duration((i + 1) * series.step),
                    "alertname": ALERT,
                    "exp_alerts": expected_alerts(slo, series, i),
                }
                for i in indices
            ],
        }
    ]
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}
