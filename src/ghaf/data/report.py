"""Contract reports: per-check counts and failing samples, as a table, JSON or an HTML page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: how many rows (or 1 for a dataset-level check) failed."""

    name: str
    kind: str
    severity: str
    columns: tuple[str, ...]
    failed: int
    total: int
    detail: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    quarantined: bool = False

    @property
    def passed(self) -> bool:
        return self.failed == 0 or self.quarantined

    @property
    def status(self) -> str:
        if self.failed == 0:
            return "pass"
        if self.quarantined:
            return "quarantined"
        return "FAIL" if self.severity == "error" else "warn"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "severity": self.severity,
            "columns": list(self.columns),
            "status": self.status,
            "failed": self.failed,
            "total": self.total,
            "detail": self.detail,
            "samples": self.samples,
        }


@dataclass(frozen=True)
class ContractReport:
    """The result of running a contract: ``ok`` unless an error-severity check failed."""

    rows: int
    results: list[CheckResult]
    seconds: float = 0.0
    dataset: str = ""
    quarantine: str | None = None

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One line: checks passed, warnings, errors."""
        passed = sum(1 for r in self.results if r.passed)
        text = (
            f"{passed}/{len(self.results)} checks passed, {len(self.warnings)} warnings, "
            f"{len(self.errors)} errors over {self.rows:,} rows"
        )
        if self.quarantine:
            text += f"; failing rows quarantined in {self.quarantine}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "ok": self.ok,
            "seconds": round(self.seconds, 4),
            "quarantine": self.quarantine,
            "summary": self.summary(),
            "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_table(self) -> Table:
        """A Rich table for the terminal."""
        table = Table(title=f"contract {self.dataset}".strip(), caption=self.summary())
        for column in ("check", "severity", "status", "failed", "detail"):
            table.add_column(column, justify="right" if column == "failed" else "left")
        styles = {"pass": "green", "warn": "yellow", "FAIL": "red", "quarantined": "magenta"}  # nosec B105
        for r in self.results:
            status = f"[{styles[r.status]}]{r.status}[/]"
            table.add_row(r.name, r.severity, status, f"{r.failed:,}", r.detail)
        return table

    def to_html(self) -> str:
        """A self-contained HTML page with the counts and sample failing rows."""
        esc = html.escape
        rows = []
        for r in self.results:
            samples = ""
            if r.samples:
                keys = list(r.samples[0])
                head = "".join(f"<th>{esc(str(k))}</th>" for k in keys)
                body = "".join(
                    "<tr>" + "".join(f"<td>{esc(str(s.get(k)))}</td>" for k in keys) + "</tr>"
                    for s in r.samples
                )
                samples = f"<table class='s'><tr>{head}</tr>{body}</table>"
            rows.append(
                f"<tr class='{esc(r.status.lower())}'><td>{esc(r.name)}</td>"
                f"<td>{esc(r.kind)}</td><td>{esc(r.severity)}</td><td>{esc(r.status)}</td>"
                f"<td>{r.failed:,}</td><td>{esc(r.detail)}{samples}</td></tr>"
            )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Contract report {esc(self.dataset)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
            "vertical-align:top}.fail td{background:#fdd}.warn td{background:#ffe9b3}"
            ".pass td{background:#e6f6e6}.quarantined td{background:#f0dcf5}"
            "table.s td,table.s th{font-size:85%;background:#fff}</style></head><body>"
            f"<h1>Contract report {esc(self.dataset)}</h1><p>{esc(self.summary())}</p>"
            "<table><tr><th>check</th><th>kind</th><th>severity</th><th>status</th>"
            f"<th>failed</th><th>detail</th></tr>{''.join(rows)}</table></body></html>"
        )
