"""Model cards: generated from what the registry and tracking recorded, editable, rendered."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ghaf.models.custom_code import CODE_DIR

if TYPE_CHECKING:
    from ghaf.registry.base import ModelVersion
    from ghaf.registry.gates import GateVerdict

GATE_HEADING = "## Gate verdicts"

_FAIRNESS = re.compile(r"(fair|parity|equal|disparit|bias)", re.I)


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> list[str]:
    if not rows:
        return ["_None recorded._"]
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return lines


def custom_code_line(version: ModelVersion) -> str:
    """Whether the model runs code of its own: a reader of the card must not have to guess."""
    code = sorted(p for p in version.files if p.startswith(f"{CODE_DIR}/") and p.endswith(".py"))
    if not code:
        return "- Custom code: none (loaded from data only)"
    files = ", ".join(f"`{path}`" for path in code)
    return (
        f"- Custom code: **runs custom code** ({files}, signed with the version; it loads "
        f"only where project {version.project}'s code policy allows its imports)"
    )


def generate_card(version: ModelVersion, run: dict[str, Any] | None) -> str:
    """A Markdown model card: intended use, data, metrics, fairness, limitations."""
    metrics = sorted(version.metrics.items())
    fairness = [(k, f"{v:.4g}") for k, v in metrics if _FAIRNESS.search(k)]
    performance = [(k, f"{v:.4g}") for k, v in metrics if not _FAIRNESS.search(k)]
    params = sorted((run or {}).get("params", {}).items())
    inputs = version.signature.get("inputs", {}).get("fields", [])
    lines = [
        f"# Model card: {version.name} v{version.version}",
        "",
        f"- Flavor: `{version.flavor}`",
        f"- Registered by: {version.created_by} on {version.created_at:%Y-%m-%d %H:%M} UTC",
        f"- Training run: `{version.run_id or 'not recorded'}`",
        f"- Files signed: {'yes' if version.signed else 'no'}",
        custom_code_line(version),
        "",
        "## Intended use",
        "",
        version.description or "_Describe the decisions this model supports and who uses it._",
        "",
        "## Data",
        "",
        *([f"- `{node}`" for node in version.lineage] or ["_No dataset lineage recorded._"]),
        "",
        "### Input signature",
        "",
        *_table(("column", "type"), [(f["name"], f["type"]) for f in inputs]),
        "",
        "## Metrics",
        "",
        *_table(("metric", "value"), performance),
        "",
        "## Fairness",
        "",
        *(
            _table(("metric", "value"), fairness)
            if fairness
            else ["_No fairness metrics recorded; evaluate before production use._"]
        ),
        "",
        "## Training parameters",
        "",
        *_table(("param", "value"), [(str(k), str(v)) for k, v in params]),
        "",
        "## Limitations",
        "",
        "_State known failure modes, populations the data under-represents, and drift risks._",
        "",
    ]
    return "\n".join(lines)


def gate_section(verdicts: Sequence[GateVerdict]) -> list[str]:
    """The card's gate section: per policy, each rule's threshold, measured value and result."""
    lines = [GATE_HEADING, ""]
    for verdict in verdicts:
        lines += [
            f"### {verdict.policy} v{verdict.policy_version}: "
            + ("**passed**" if verdict.passed else "**failed**"),
            "",
            f"- For: {verdict.purpose}, on {verdict.evaluated_at:%Y-%m-%d %H:%M} UTC "
            f"by {verdict.evaluated_by}",
            "",
            "| rule | threshold | measured | result |",
            "|---|---|---|---|",
        ]
        for rule in verdict.rules:
            measured = rule.measured
            shown = (
                "missing"
                if measured is None
                else (f"{measured:.4g}" if isinstance(measured, float) else str(measured))
            )
            lines.append(
                f"| {_cell(rule.rule)} | {_cell(rule.threshold or '')} | {_cell(shown)} | "
                + ("pass" if rule.passed else "**FAIL**")
                + " |"
            )
        lines.append("")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def with_gate_section(card: str, verdicts: Sequence[GateVerdict]) -> str:
    """``card`` with its gate section replaced (or added before *Limitations*, else at the end).

    The rest of the card, edits included, is kept as it is.
    """
    lines = card.splitlines()
    section = gate_section(verdicts)
    if GATE_HEADING in lines:
        start = lines.index(GATE_HEADING)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines[start:end] = section
    elif "## Limitations" in lines:
        at = lines.index("## Limitations")
        lines[at:at] = section
    else:
        lines += ["", *section] if lines and lines[-1].strip() else section
    return "\n".join(lines).rstrip("\n") + "\n"


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"(?<![\w])_([^_]+)_(?![\w])", r"<em>\1</em>", escaped)


def render_html(markdown: str, title: str = "Model card") -> str:
    """Render the Markdown subset cards use (headings, lists, tables, paragraphs); escaped."""
    style = (
        "body{font-family:system-ui,sans-serif;max-width:860px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "code{background:#f3f3f3;padding:0 3px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{render_body(markdown)}</body></html>"
    )


def render_body(markdown: str, *, shift: int = 0) -> str:
    """The card's HTML without a document around it (a page embeds it), every text
    escaped; headings ``shift`` levels deeper (at most h6)."""
    out: list[str] = []
    in_list = False
    table: list[list[str]] = []

    def close() -> None:
        nonlocal in_list, table
        if in_list:
            out.append("</ul>")
            in_list = False
        if table:
            head, *body = table
            out.append("<table><thead><tr>")
            out.extend(f"<th>{_inline(c)}</th>" for c in head)
            out.append("</tr></thead><tbody>")
            for row in body:
                out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
            table = []

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                table.append(cells)
            continue
        if stripped.startswith(("- ", "* ")):
            if table:
                close()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(stripped[2:])}</li>")
            continue
        close()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            level = min(6, len(heading.group(1)) + shift)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    close()
    return "".join(out)
