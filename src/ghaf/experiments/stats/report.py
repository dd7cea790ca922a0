"""The experiment report as one self-contained HTML file: inline CSS and SVG, no script.

Same approach as the drift report (:mod:`ghaf.monitoring.report_html`): what is drawn
comes from the analysis' summaries (at most 30 looks), so the page's size never grows
with the number of units.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from ghaf.experiments.stats.decision import TestResult
from ghaf.experiments.stats.render import fmt
from ghaf.experiments.stats.series import LiftSeries
from ghaf.experiments.stats.table import Analysis

W, H = 720, 240
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 40
FIXED_COLOR = "#F58518"
SEQ_COLOR = "#4C78A8"

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--bad:#c53030;--ok:#2f855a;
--warn:#b7791f}*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,
Segoe UI,Roboto,sans-serif;color:var(--ink);background:var(--bg)}header{background:#102a43;
color:#fff;padding:22px 32px}header h1{margin:0 0 4px;font-size:22px}header p{margin:0;
color:#bcccdc}main{padding:20px 32px;max-width:1200px;margin:auto}.cards{display:grid;
grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:14px;margin-bottom:20px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.card .big{font-size:26px;font-weight:700}.card .lbl{color:var(--muted);font-size:12px;
text-transform:uppercase;letter-spacing:.04em}table{border-collapse:collapse;width:100%;
background:#fff;border:1px solid var(--line)}th,td{padding:6px 10px;border-bottom:1px solid
var(--line);text-align:right;white-space:nowrap}th{background:#f0f4f8;font-size:12px;
color:var(--muted);text-transform:uppercase}td:first-child,th:first-child{text-align:left}
h2{font-size:17px;margin:26px 0 10px}.v-ship{color:var(--ok)}.v-stop,.v-blocked{color:var(--bad)}
.v-keep_running{color:var(--warn)}.chart{background:#fff;border:1px solid var(--line);
border-radius:8px}svg text{font:11px system-ui,sans-serif;fill:#52606d}.legend{font-size:12px;
color:var(--muted)}.sw{display:inline-block;width:10px;height:10px;border-radius:2px;
margin:0 4px 0 10px}ul.reasons{background:#fff;border:1px solid var(--line);padding:10px 28px}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _finite(values: tuple[float, ...]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _band_svg(series: LiftSeries) -> str:
    """Lift with the fixed interval and the confidence sequence, per look."""
    k = len(series.times)
    every = _finite(series.fixed_low + series.fixed_high + series.sequential_low)
    every += [*_finite(series.sequential_high + series.lift), 0.0]
    if k == 0 or len(every) < 2:
        return "<p>Not enough data over time to draw the lift.</p>"
    lo, hi = min(every), max(every)
    if hi == lo:
        hi, lo = hi + 1, lo - 1

    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (i / max(k - 1, 1))

    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / (hi - lo))

    def band(low: tuple[float, ...], high: tuple[float, ...], color: str) -> str:
        idx = [i for i in range(k) if math.isfinite(low[i]) and math.isfinite(high[i])]
        if not idx:
            return ""
        top = " ".join(f"{x(i):.1f},{y(high[i]):.1f}" for i in idx)
        bottom = " ".join(f"{x(i):.1f},{y(low[i]):.1f}" for i in reversed(idx))
        return f'<polygon points="{top} {bottom}" fill="{color}" fill-opacity="0.22"/>'

    line_pts = " ".join(
        f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series.lift) if math.isfinite(v)
    )
    zero = y(0.0)
    ticks = "".join(
        f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v, 3)}</text>'
        for v in (lo, 0.0, hi)
    )
    labels = "".join(
        f'<text x="{x(i):.1f}" y="{H - PAD_B + 16}" text-anchor="middle">'
        f"{_e(series.times[i][:10])}</text>"
        for i in sorted({0, k // 2, k - 1})
    )
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">'
        f"{band(series.fixed_low, series.fixed_high, FIXED_COLOR)}"
        f"{band(series.sequential_low, series.sequential_high, SEQ_COLOR)}"
        f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{zero:.1f}" y2="{zero:.1f}" stroke="#9aa5b1" '
        f'stroke-dasharray="4 3"/><polyline points="{line_pts}" fill="none" stroke="#1f2933" '
        f'stroke-width="1.5"/>{ticks}{labels}</svg>'
        f'<div class="legend"><span class="sw" style="background:{SEQ_COLOR}"></span>'
        f'always-valid confidence sequence<span class="sw" style="background:{FIXED_COLOR}">'
        f"</span>fixed-horizon interval (valid at one planned look only)</div>"
    )


def _series_table(series: LiftSeries) -> str:
    rows = "".join(
        f"<tr><td>{_e(series.times[i])}</td><td>{series.n_control[i]}</td>"
        f"<td>{series.n_treatment[i]}</td><td>{fmt(series.lift[i])}</td>"
        f"<td>[{fmt(series.fixed_low[i])}, {fmt(series.fixed_high[i])}]</td>"
        f"<td>{fmt(series.fixed_p[i])}</td>"
        f"<td>[{fmt(series.sequential_low[i])}, {fmt(series.sequential_high[i])}]</td>"
        f"<td>{fmt(series.sequential_p[i])}</td><td>{fmt(series.srm_p[i])}</td></tr>"
        for i in range(len(series.times))
    )
    return (
        "<table><tr><th>look</th><th>n control</th><th>n treatment</th><th>lift</th>"
        "<th>fixed interval</th><th>fixed p</th><th>confidence sequence</th>"
        f"<th>always-valid p</th><th>SRM p</th></tr>{rows}</table>"
    )


def _metric_rows(analysis: Analysis) -> str:
    rows = []
    g = analysis.goal
    entries: list[tuple[str, str, TestResult | None]] = [(f"{analysis.metric_col} (goal)", "", g)]
    entries += [(f"{c.name} (guardrail)", c.status, c.result) for c in analysis.decision.guardrails]
    for label, status, r in entries:
        if r is None:
            rows.append(
                f"<tr><td>{_e(label)}</td><td>{_e(status)}</td>" + "<td>-</td>" * 6 + "</tr>"
            )
            continue
        rows.append(
            f"<tr><td>{_e(label)}</td><td>{_e(status or r.test)}</td>"
            f"<td>{fmt(r.control.mean)}</td><td>{fmt(r.treatment.mean)}</td>"
            f"<td>{r.control.n} / {r.treatment.n}</td><td>{fmt(r.absolute_lift)}</td>"
            f"<td>[{fmt(r.ci.low)}, {fmt(r.ci.high)}]</td><td>{fmt(r.p_value)}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>test / status</th><th>control</th><th>treatment</th>"
        f"<th>n</th><th>lift</th><th>interval</th><th>p</th></tr>{''.join(rows)}</table>"
    )


def render_report(analysis: Analysis, series: LiftSeries | None = None) -> str:
    """The whole page as a string."""
    d, srm, g = analysis.decision, analysis.srm, analysis.goal
    ratio = " / ".join(f"{_e(n)} {c}" for n, c in zip(srm.variants, srm.counts, strict=True))
    cards = (
        f'<div class="card"><div class="lbl">decision</div><div class="big v-{d.verdict}">'
        f"{_e(d.verdict.replace('_', ' '))}</div></div>"
        f'<div class="card"><div class="lbl">lift ({_e(analysis.metric_col)})</div>'
        f'<div class="big">{fmt(g.absolute_lift)}</div>[{fmt(g.ci.low)}, {fmt(g.ci.high)}] '
        f"at {1 - g.alpha:.0%}</div>"
        f'<div class="card"><div class="lbl">relative lift</div><div class="big">'
        f"{fmt(g.relative_lift)}</div>[{fmt(g.relative_ci.low)}, {fmt(g.relative_ci.high)}]</div>"
        f'<div class="card"><div class="lbl">sample ratio</div><div class="big '
        f'v-{"blocked" if srm.mismatch else "ship"}">p = {fmt(srm.p_value, 3)}</div>{ratio}</div>'
    )
    raw_note = (
        "<p>Over time: the raw metric (CUPED applies to the whole table above).</p>"
        if analysis.cuped is not None
        else ""
    )
    over_time = (
        f"<h2>Lift over time</h2>{raw_note}{_band_svg(series)}<h2>Looks</h2>{_series_table(series)}"
        if series is not None
        else ""
    )
    cuped = (
        f"<p>CUPED on {_e(analysis.covariate_col)}: theta {fmt(analysis.cuped.theta)}, "
        f"variance reduced by {analysis.cuped.variance_reduction:.1%}.</p>"
        if analysis.cuped is not None
        else ""
    )
    reasons = "".join(f"<li>{_e(r)}</li>" for r in d.reasons)
    test = "mSPRT, always valid" if analysis.sequential else g.test
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Experiment report: {_e(analysis.metric_col)}</title><style>{CSS}</style></head>"
        f"<body><header><h1>Experiment report: {_e(analysis.metric_col)}</h1>"
        f"<p>{_e(analysis.control)} (control) vs {_e(analysis.treatment)}; {analysis.units} units;"
        f' {_e(test)}; alpha {g.alpha}</p></header><main><div class="cards">{cards}</div>'
        f'<h2>Decision: {_e(d.verdict)}</h2><ul class="reasons">{reasons}</ul>'
        f"<h2>Goal and guardrails</h2>{_metric_rows(analysis)}{cuped}{over_time}"
        "</main></body></html>"
    )


def write_report(path: Path, analysis: Analysis, series: LiftSeries | None = None) -> None:
    """Write the page atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.partial")
    scratch.write_text(render_report(analysis, series), encoding="utf-8")
    scratch.replace(path)
