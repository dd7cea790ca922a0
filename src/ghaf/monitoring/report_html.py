"""The drift report as one self-contained HTML file: inline CSS and SVG, no scripts fetched.

Everything drawn comes from the report's summaries (fixed-size histograms and category
bars), so the file's size depends on the number of columns, never on the number of rows.
"""

from __future__ import annotations

import html
import math

from ghaf.monitoring.base import ColumnDrift, DomainResult, DriftReport, Histogram

REF_COLOR = "#4C78A8"
CUR_COLOR = "#F58518"
W, H = 440, 170
PAD_L, PAD_R, PAD_T, PAD_B = 40, 10, 10, 28

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--drift:#c53030;--ok:#2f855a;
--warn:#b7791f}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,
sans-serif;color:var(--ink);background:var(--bg)}
header{background:#102a43;color:#fff;padding:22px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#bcccdc}main{padding:20px 32px;max-width:1400px;margin:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:14px;
margin-bottom:20px}.card{background:#fff;border:1px solid var(--line);border-radius:8px;
padding:14px 16px}.card .big{font-size:28px;font-weight:700}.card .lbl{color:var(--muted);
font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);
border-radius:8px;overflow:hidden}th,td{padding:6px 10px;border-bottom:1px solid var(--line);
text-align:right;white-space:nowrap}th{background:#f0f4f8;font-size:12px;color:var(--muted);
text-transform:uppercase}td:first-child,th:first-child,td.l{text-align:left}
tr.drift td:first-child{border-left:4px solid var(--drift)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
color:#fff}.b-drift{background:var(--drift)}.b-ok{background:var(--ok)}.b-other{background:var(--warn)}
h2{font-size:17px;margin:26px 0 10px}.grid{display:grid;grid-template-columns:repeat(auto-fill,
minmax(460px,1fr));gap:14px}.col{background:#fff;border:1px solid var(--line);border-radius:8px;
padding:12px 14px}.col.drift{border-color:#feb2b2;box-shadow:0 0 0 1px #feb2b2}
.col h3{margin:0 0 6px;font-size:15px;display:flex;justify-content:space-between;gap:8px}
.facts{color:var(--muted);font-size:12px;margin-top:4px}.legend{font-size:12px;color:var(--muted)}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px}
.note{color:var(--warn);font-size:12px}svg text{font:11px system-ui,sans-serif;fill:#52606d}
.controls{margin:8px 0 12px;color:var(--muted)}
"""

SCRIPT = """
document.getElementById('only-drift').addEventListener('change',function(e){
document.querySelectorAll('[data-verdict]').forEach(function(el){
el.style.display=(e.target.checked&&el.dataset.verdict!=='drift')?'none':'';});});
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def _badge(verdict: str) -> str:
    cls = {"drift": "b-drift", "ok": "b-ok"}.get(verdict, "b-other")
    return f'<span class="badge {cls}">{_e(verdict)}</span>'


def _numeric_svg(h: Histogram) -> str:
    n = len(h.reference)
    top = max(max(h.reference, default=0), max(h.current, default=0)) or 1.0
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    step = plot_w / n

    def path(values: list[float], close: bool) -> str:
        y0 = PAD_T + plot_h
        pts = [f"M{PAD_L:.1f},{y0:.1f}"]
        for i, v in enumerate(values):
            y = PAD_T + plot_h * (1 - v / top)
            pts.append(f"L{PAD_L + i * step:.1f},{y:.1f}L{PAD_L + (i + 1) * step:.1f},{y:.1f}")
        pts.append(f"L{PAD_L + plot_w:.1f},{y0:.1f}")
        return "".join(pts) + ("Z" if close else "")

    edges = h.edges or []
    ticks = ""
    if len(edges) >= 2:
        for frac in (0.0, 0.5, 1.0):
            x = PAD_L + plot_w * frac
            value = edges[0] + (edges[-1] - edges[0]) * frac
            anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
            ticks += f'<text x="{x:.1f}" y="{H - 8}" text-anchor="{anchor}">{_num(value, 3)}</text>'
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">'
        f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{W - PAD_R}" y2="{PAD_T + plot_h}" '
        'stroke="#9aa5b1"/>'
        f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end">{top:.0%}</text>'
        f'<path d="{path(h.reference, True)}" fill="{REF_COLOR}" fill-opacity=".35" '
        f'stroke="{REF_COLOR}" stroke-width="1"/>'
        f'<path d="{path(h.current, False)}" fill="none" stroke="{CUR_COLOR}" stroke-width="2"/>'
        f"{ticks}</svg>"
    )


def _category_svg(h: Histogram) -> str:
    rows = len(h.labels)
    row_h, label_w = 20, 120
    height = rows * row_h + 8
    top = max(max(h.reference, default=0), max(h.current, default=0)) or 1.0
    bar_w = W - label_w - 50
    parts = []
    for i, (label, ref, cur) in enumerate(zip(h.labels, h.reference, h.current, strict=True)):
        y = 4 + i * row_h
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{_e(short)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{max(bar_w * ref / top, 0.5):.1f}" '
            f'height="7" fill="{REF_COLOR}"><title>reference {ref:.2%}</title></rect>'
            f'<rect x="{label_w}" y="{y + 10}" width="{max(bar_w * cur / top, 0.5):.1f}" '
            f'height="7" fill="{CUR_COLOR}"><title>current {cur:.2%}</title></rect>'
            f'<text x="{label_w + bar_w * max(ref, cur) / top + 4:.1f}" y="{y + 14}">'
            f"{cur - ref:+.1%}</text>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {W} {height}" width="{W}" height="{height}" '
        f'role="img">{"".join(parts)}</svg>'
    )


def _column_card(c: ColumnDrift) -> str:
    chart = ""
    if c.histogram is not None:
        chart = _numeric_svg(c.histogram) if c.kind == "numeric" else _category_svg(c.histogram)
    d = c.distances
    facts = [f"test <b>{_e(c.method)}</b>", f"statistic {_num(c.statistic)}"]
    if c.p_value is not None:
        facts.append(f"p {_num(c.p_value)} · adjusted {_num(c.adjusted_p)}")
    facts.append(f"threshold {_num(c.threshold)}")
    for key in ("psi", "js", "wasserstein", "tv"):
        if key in d:
            facts.append(f"{key.upper() if key != 'wasserstein' else 'W (norm.)'} {_num(d[key])}")
    if "reference_mean" in d:
        facts.append(f"mean {_num(d['reference_mean'])} → {_num(d['current_mean'])}")
    facts.append(f"missing {c.reference_missing:.1%} → {c.current_missing:.1%}")
    note = f'<div class="note">{_e(c.note)}</div>' if c.note else ""
    cls = "col drift" if c.drifted else "col"
    return (
        f'<section class="{cls}" data-verdict="{_e(c.verdict)}" id="col-{_e(c.column)}">'
        f"<h3><span>{_e(c.column)} <small>({_e(c.kind)})</small></span>{_badge(c.verdict)}</h3>"
        f"{chart}<div class='facts'>{' · '.join(facts)}</div>{note}</section>"
    )


def _domain(domain: DomainResult | None) -> tuple[str, str]:
    if domain is None:
        return "", ""
    verdict = "drift" if domain.drifted else "ok"
    card = (
        f'<div class="card"><div class="lbl">Domain classifier AUC</div>'
        f'<div class="big">{domain.auc:.3f}</div>{_badge(verdict)} '
        f"threshold {domain.threshold:.3f} · p {domain.p_value:.3g}</div>"
    )
    bars = ""
    top = max((share for _, share in domain.top_columns), default=0) or 1.0
    for i, (name, share) in enumerate(domain.top_columns):
        y = 4 + i * 22
        bars += (
            f'<text x="150" y="{y + 14}" text-anchor="end">{_e(name)}</text>'
            f'<rect x="156" y="{y + 3}" width="{max(250 * share / top, 1):.1f}" height="14" '
            f'fill="#627d98"/><text x="{160 + 250 * share / top:.1f}" y="{y + 14}">'
            f"{share:.0%}</text>"
        )
    height = 8 + 22 * len(domain.top_columns)
    detail = (
        "<h2>Multivariate drift (domain classifier)</h2><div class='col'>"
        f"<p>A LightGBM model trained on {domain.rows_used:,} sampled rows to tell the "
        f"windows apart reached a held-out AUC of <b>{domain.auc:.3f}</b>; under no drift "
        f"(200 label permutations) 95% of AUCs stay below {domain.threshold:.3f}. "
        f"{_e(domain.note)}</p>"
        + (
            f'<div class="legend">Columns driving the difference (share of model gain)</div>'
            f'<svg class="chart" viewBox="0 0 460 {height}" width="460" height="{height}">'
            f"{bars}</svg>"
            if domain.top_columns
            else ""
        )
        + "</div>"
    )
    return card, detail


def render_html(report: DriftReport) -> str:
    """The report as a complete HTML document (a string; write it with UTF-8)."""
    tested = [c for c in report.columns if c.verdict in ("drift", "ok")]
    drifted = report.drifted_columns
    other = [c for c in report.columns if c.verdict not in ("drift", "ok")]
    domain_card, domain_detail = _domain(report.domain)
    rows = []
    for c in report.columns:
        d = c.distances
        rows.append(
            f'<tr class="{"drift" if c.drifted else ""}" data-verdict="{_e(c.verdict)}">'
            f'<td><a href="#col-{_e(c.column)}">{_e(c.column)}</a></td><td class="l">'
            f"{_e(c.kind)}</td><td class='l'>{_e(c.method)}</td><td>{_num(c.statistic)}</td>"
            f"<td>{_num(c.p_value)}</td><td>{_num(c.adjusted_p)}</td><td>{_num(c.threshold)}</td>"
            f"<td>{_num(d.get('psi'))}</td><td>{_num(d.get('js'))}</td>"
            f"<td>{_num(d.get('wasserstein', d.get('tv')))}</td><td>{_badge(c.verdict)}</td></tr>"
        )
    sample_note = (
        "Tests ran on uniform samples of each window (see the profile capacity)."
        if report.sampled
        else "Tests ran on every row."
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Drift report: {_e(report.current_name)} vs {_e(report.reference_name)}</title>
<style>{CSS}</style></head><body>
<header><h1>Drift report</h1><p>current <b>{_e(report.current_name)}</b>
({report.current_rows:,} rows) against reference <b>{_e(report.reference_name)}</b>
({report.reference_rows:,} rows) · {_e(report.created_at)}</p></header><main>
<div class="cards">
<div class="card"><div class="lbl">Columns drifted</div><div class="big"
 style="color:{"var(--drift)" if drifted else "var(--ok)"}">{len(drifted)} / {len(tested)}</div>
{_e(", ".join(drifted[:8]) + (" …" if len(drifted) > 8 else "") or "none")}</div>
{domain_card}
<div class="card"><div class="lbl">Decision rule</div>KS (numeric) and chi-square
(categorical), Benjamini-Hochberg across columns at α = {report.alpha:g}.
<div class="facts">{sample_note}</div></div>
<div class="card"><div class="lbl">Not tested</div><div class="big">{len(other)}</div>
{_e(", ".join(f"{c.column} ({c.verdict})" for c in other[:6]) or "every column was tested")}
</div></div>
<h2>Columns</h2><div class="controls"><label><input type="checkbox" id="only-drift">
 show drifted columns only</label><span class="sw" style="background:{REF_COLOR}"></span>reference
<span class="sw" style="background:{CUR_COLOR}"></span>current</div>
<table><thead><tr><th>column</th><th>kind</th><th>test</th><th>statistic</th><th>p-value</th>
<th>adjusted p</th><th>threshold</th><th>PSI</th><th>JS</th><th>W / TV</th><th>verdict</th>
</tr></thead><tbody>{"".join(rows)}</tbody></table>
{domain_detail}
<h2>Distributions</h2><div class="grid">{"".join(_column_card(c) for c in report.columns)}</div>
</main><script>{SCRIPT}</script></body></html>"""
