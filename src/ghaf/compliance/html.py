"""The compliance report as one self-contained HTML page: no script, no external asset,
every value from the home escaped (names, descriptions and reasons are user input)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#1d2327}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:2px solid #d0d7de}
table{border-collapse:collapse;margin:.4rem 0;font-size:13px}
td,th{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7}.evidence{color:#116329;font-weight:600}
.gap{color:#a40e26;font-weight:600}ul.gaps li{color:#a40e26}ul.notes li{color:#7d4e00}
code{font-size:12px;word-break:break-all}.muted{color:#667}
"""
_MAX_ROWS = 500


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _scalar(value: Any) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _e(value.isoformat())
    return _e(value)


def _is_flat(item: Any) -> bool:
    return isinstance(item, dict) and all(
        not isinstance(v, dict | list) or _short_list(v) for v in item.values()
    )


def _short_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def render_value(value: Any) -> str:
    """Any JSON-like value as escaped HTML: dicts as two-column tables, lists of flat
    objects as tables with a column per key, everything else as text."""
    if isinstance(value, dict):
        if not value:
            return '<span class="muted">none</span>'
        rows = "".join(
            f"<tr><th>{_e(k)}</th><td>{render_value(v)}</td></tr>" for k, v in value.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        if not value:
            return '<span class="muted">none</span>'
        if all(_is_flat(v) for v in value):
            return _table(value)
        if all(not isinstance(v, dict | list) for v in value):
            return ", ".join(_scalar(v) for v in value)
        return "".join(f"<div>{render_value(v)}</div>" for v in value[:_MAX_ROWS])
    return _scalar(value)


def _table(items: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for item in items:
        columns.extend(k for k in item if k not in columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{render_value(item.get(c))}</td>" for c in columns) + "</tr>"
        for item in items[:_MAX_ROWS]
    )
    more = len(items) - _MAX_ROWS
    tail = f'<p class="muted">and {more} more (see the JSON)</p>' if more > 0 else ""
    return f"<table><tr>{head}</tr>{body}</table>{tail}"


def _sbom_table(sbom: dict[str, Any]) -> str:
    rows = []
    for c in sbom.get("components", []):
        licenses = "; ".join(
            item.get("expression") or item.get("license", {}).get("name", "")
            for item in c.get("licenses", [])
        )
        rows.append(
            {
                "name": c.get("name"),
                "version": c.get("version"),
                "type": c.get("type"),
                "licenses": licenses or None,
                "purl": c.get("purl"),
            }
        )
    head = (
        f"<p>CycloneDX {_e(sbom.get('specVersion'))} SBOM {_e(sbom.get('serialNumber'))}, "
        f"{len(rows)} components (the JSON report carries the whole document).</p>"
    )
    return head + _table(rows)


def _control(control: dict[str, Any]) -> str:
    status = control["status"]
    parts = [
        f'<h2 id="{_e(control["id"])}">{_e(" / ".join(control["controls"]))}: '
        f"{_e(control['title'])} "
        f'<span class="{_e(status)}">[{_e(status)}]</span></h2>'
    ]
    if control["gaps"]:
        items = "".join(f"<li>{_e(g)}</li>" for g in control["gaps"])
        parts.append(f'<h3>Gaps</h3><ul class="gaps">{items}</ul>')
    if control["notes"]:
        items = "".join(f"<li>{_e(n)}</li>" for n in control["notes"])
        parts.append(f'<h3>Review items</h3><ul class="notes">{items}</ul>')
    for key, value in control["evidence"].items():
        shown = _sbom_table(value) if key == "sbom" else render_value(value)
        parts.append(f"<h3>{_e(key.replace('_', ' '))}</h3>{shown}")
    return "\n".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The report (its JSON document, as the API returns it) as one HTML page."""
    summary_rows = "".join(
        f'<tr><td><a href="#{_e(c["id"])}">{_e(", ".join(c["controls"]))}</a></td>'
        f"<td>{_e(c['title'])}</td>"
        f'<td class="{_e(c["status"])}">{_e(c["status"])}</td>'
        f"<td>{_e(len(c['gaps']))}</td><td>{_e(len(c['notes']))}</td></tr>"
        for c in report["controls"]
    )
    window = report["window"]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>Ghaf compliance report</title><style>{_STYLE}</style></head><body>"
        f"<h1>Compliance evidence: {_e(report['standard'])}</h1>"
        f"<p>Generated {_scalar(report['generated_at'])} for {_e(report['generated_by'])}; "
        f"events from {_scalar(window['since'])} to {_scalar(window['until'])}. "
        f"Schema <code>{_e(report['schema'])}</code>.</p>"
        "<table><tr><th>Annex A</th><th>control</th><th>status</th><th>gaps</th>"
        f"<th>review items</th></tr>{summary_rows}</table>"
        + "".join(_control(c) for c in report["controls"])
        + "</body></html>\n"
    )
