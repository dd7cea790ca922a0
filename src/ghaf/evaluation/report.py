"""The HTML evaluation report: metric tables and inline SVG plots (ROC, PR, calibration,
slices, fairness); one self-contained file, no JavaScript."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ghaf.evaluation.evaluate import Evaluation

_W, _H, _PAD = 320, 240, 36


def _line_plot(title: str, xlabel: str, ylabel: str, series: dict[str, Any], diagonal: bool) -> str:
    xs: Sequence[float] = series.get("x", [])
    ys: Sequence[float] = series.get("y", [])

    def px(x: float) -> float:
        return _PAD + x * (_W - 2 * _PAD)

    def py(y: float) -> float:
        return _H - _PAD - y * (_H - 2 * _PAD)

    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    diag = (
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#bbb" '
        'stroke-dasharray="4"/>'
        if diagonal
        else ""
    )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(title)}">'
        f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" '
        'fill="none" stroke="#444"/>'
        f"{diag}"
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
        f'<text x="{_W / 2}" y="{_H - 6}" text-anchor="middle">{html.escape(xlabel)}</text>'
        f'<text x="10" y="{_H / 2}" transform="rotate(-90 10 {_H / 2})" '
        f'text-anchor="middle">{html.escape(ylabel)}</text></svg></figure>'
    )


def _bar_plot(title: str, values: dict[str, float]) -> str:
    if not values:
        return ""
    top = max(max(values.values()), 1e-12)
    bar_h = 18
    height = bar_h * len(values) + 20
    rows = []
    for i, (label, value) in enumerate(values.items()):
        width = (_W - 140) * max(value, 0.0) / top
        y = 10 + i * bar_h
        rows.append(
            f'<text x="0" y="{y + 13}">{html.escape(label[:16])}</text>'
            f'<rect x="110" y="{y + 2}" width="{width:.1f}" height="{bar_h - 4}" fill="#2ca02c"/>'
            f'<text x="{114 + width:.1f}" y="{y + 13}">{value:.3f}</text>'
        )
    return (
        f"<figure><figcaption>{html.escape(title)}</figcaption>"
        f'<svg width="{_W}" height="{height}" role="img">{"".join(rows)}</svg></figure>'
    )


def _table(rows: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{v:.4g}</td></tr>"
        if isinstance(v, int | float)
        else f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def render_report(evaluation: Evaluation, title: str = "Evaluation report") -> str:
    """A self-contained HTML page for ``evaluation``."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "figure{display:inline-block;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><h2>Metrics ({evaluation.task})</h2>",
        _table(evaluation.metrics),
        "<h2>Plots</h2>",
    ]
    curves = evaluation.curves
    if "roc" in curves:
        roc = _line_plot("ROC", "false positive rate", "true positive rate", curves["roc"], True)
        parts.append(roc)
    if "pr" in curves:
        parts.append(_line_plot("Precision-recall", "recall", "precision", curves["pr"], False))
    if "calibration" in curves:
        calibration = curves["calibration"]
        parts.append(_line_plot("Calibration", "mean predicted", "observed", calibration, True))
    key = "auc" if evaluation.task == "classification" else "rmse"
    for column, groups in evaluation.slices.items():
        values = {value: float(m.get(key, 0.0)) for value, m in groups.items()}
        parts.append(_bar_plot(f"{key} by {column}", values))
    if evaluation.fairness:
        parts.append("<h2>Fairness</h2>")
        for attribute, measures in evaluation.fairness.items():
            scalars = {k: v for k, v in measures.items() if isinstance(v, int | float)}
            parts.append(f"<h3>{html.escape(attribute)}</h3>{_table(scalars)}")
            parts.append(_bar_plot(f"selection rate by {attribute}", measures["selection_rate"]))
    if evaluation.robustness:
        parts.append("<h2>Robustness</h2>" + _table(evaluation.robustness))
    if evaluation.comparison:
        parts.append("<h2>Champion vs challenger</h2>" + _table(evaluation.comparison))
    parts.append("</body></html>")
    return "".join(parts)
