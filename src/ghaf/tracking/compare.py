"""Comparing runs: a side-by-side table and an HTML page with metric curves (inline SVG)."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from typing import Any

from ghaf.platform import Platform
from ghaf.tracking.base import MetricPoint, Run
from ghaf.tracking.service import get_metric_history, get_run

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def compare_table(
    runs: Sequence[Run | Mapping[str, Any]],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per param/metric/tag, one column per run (a :class:`Run`
    or its JSON document, as a server answers it)."""
    docs = [run if isinstance(run, Mapping) else dataclasses.asdict(run) for run in runs]
    header = ["", *[f"{d['name']} ({d['run_id'][:8]})" for d in docs]]
    rows: list[list[str]] = [["status", *[d["status"] for d in docs]]]
    for label, values in (("param", "params"), ("metric", "metrics"), ("tag", "tags")):
        keys = sorted({k for d in docs for k in d[values]})
        for key in keys:
            cells = []
            for doc in docs:
                value = doc[values].get(key)
                cells.append(
                    "" if value is None else f"{value:.6g}" if label == "metric" else str(value)
                )
            rows.append([f"{label}.{key}", *cells])
    return header, rows


def _curve(
    series: dict[str, list[MetricPoint]], key: str, width: int = 560, height: int = 220
) -> str:
    points = [p for values in series.values() for p in values]
    if not points:
        return ""
    steps = [p.step for p in points]
    values = [p.value for p in points]
    x0, x1 = min(steps), max(steps) or 1
    y0, y1 = min(values), max(values)
    span_x = (x1 - x0) or 1
    span_y = (y1 - y0) or 1.0
    pad = 30
    lines = []
    for index, (name, values_) in enumerate(series.items()):
        coords = " ".join(
            f"{pad + (p.step - x0) / span_x * (width - 2 * pad):.1f},"
            f"{height - pad - (p.value - y0) / span_y * (height - 2 * pad):.1f}"
            for p in values_
        )
        color = _COLORS[index % len(_COLORS)]
        lines.append(
            f"<polyline fill='none' stroke='{color}' stroke-width='1.5' points='{coords}'>"
            f"<title>{html.escape(name)}</title></polyline>"
        )
    return (
        f"<h3>{html.escape(key)}</h3><svg width='{width}' height='{height}' "
        f"xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{html.escape(key)}'>"
        f"<rect width='100%' height='100%' fill='#fafafa'/>"
        f"<text x='4' y='14' font-size='10'>{y1:.4g}</text>"
        f"<text x='4' y='{height - pad + 12}' font-size='10'>{y0:.4g}</text>"
        f"<text x='{width - pad}' y='{height - 6}' font-size='10'>step {x1}</text>"
        + "".join(lines)
        + "</svg>"
    )


def _labels(runs: Sequence[Any]) -> list[str]:
    """A curve's name: the run's, with its id where runs share a name (reruns of one
    experiment often do), so no run's curve hides another's."""
    names = [r.name for r in runs]
    return [f"{r.name} ({r.run_id[:8]})" if names.count(r.name) > 1 else r.name for r in runs]


def compare_html(platform: Platform, run_ids: Sequence[str]) -> str:
    """An HTML page comparing ``run_ids``: the table, then one chart per metric."""
    runs = [get_run(platform, run_id, with_env=False) for run_id in run_ids]
    header, rows = compare_table(runs)
    table = "<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
    table += "</tr></thead><tbody>"
    for row in rows:
        table += "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
    table += "</tbody></table>"
    labels = _labels(runs)
    legend = "".join(
        f"<span style='color:{_COLORS[i % len(_COLORS)]}'>&#9632; {html.escape(label)}</span> "
        for i, label in enumerate(labels)
    )
    charts = []
    for key in sorted({k for r in runs for k in r.metrics}):
        series = {
            label: get_metric_history(platform, r.run_id, key)
            for label, r in zip(labels, runs, strict=True)
        }
        charts.append(_curve(series, key))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title>"
        f"<style>{style}</style></head><body><h1>Run comparison</h1>{table}"
        f"<h2>Metric curves</h2><p>{legend}</p>{''.join(charts)}</body></html>"
    )
