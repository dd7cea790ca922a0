"""What a canary's evaluator reads: the serving counters, the prediction log, the outcomes.

- Requests and 5xx answers per version come from ``/metrics`` of each ``ghaf serve`` the
  plan names, as the change since the step began (the counters then are the canary's
  ``baseline``; a counter below its baseline restarted, and counts from zero).
- Each answer's scoring latency, its predicted class and score (the first output's
  first row: the top column, or for one column the value against the plan's threshold;
  none where the row holds a NaN; the score is its last column) come from the
  prediction log.
- Labels are the outcomes reported for the model, joined to an answer by its request
  id, or by its experiment unit; the latest report for an id counts.

Nothing here decides: :mod:`ghaf.experiments.canary_checks` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ghaf.errors import PolicyViolationError
from ghaf.experiments.canary_records import Canary
from ghaf.experiments.rollout import RolloutPlan
from ghaf.platform import Platform
from ghaf.security.base import KeyProvider
from ghaf.serving.outcomes import read_outcomes
from ghaf.serving.predlog import LOG_SCHEMA, log_files, prediction_log_keys, read_log_table
from ghaf.serving.scrape import (
    SCRAPE_ATTEMPTS,
    SCRAPE_TIMEOUT_S,
    ScrapeError,
    check_allowed,
    fetch_metrics,
)

REQUESTS = "ghaf_requests_total"
SERVE_MARKER = "ghaf_prediction_log_dropped"
"""A series every ``ghaf serve`` exports from its start (requests appear with the first)."""
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
Counters = dict[str, dict[str, float]]
"""Per metrics target: ``MODEL:VERSION:CODE`` -> requests counted (JSON-able)."""


def parse_requests(text: str) -> dict[str, float]:
    """``MODEL:VERSION:CODE`` -> value of every ``ghaf_requests_total`` sample in a
    Prometheus text exposition, summed over any other label (a worker's, say)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(REQUESTS + "{"):
            continue
        labels_text, sep, rest = line[len(REQUESTS) + 1 :].rpartition("}")
        if not sep or not rest.strip():
            continue
        labels = {
            k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(labels_text)
        }
        if not {"model", "version", "code"} <= set(labels):
            continue
        try:
            value = float(rest.split()[0])
        except ValueError:
            value = math.nan
        key = f"{labels['model']}:{labels['version']}:{labels['code']}"
        found[key] = found.get(key, 0.0) + value
    return found


def scrape_requests(
    target: str, timeout: float = SCRAPE_TIMEOUT_S, attempts: int = SCRAPE_ATTEMPTS
) -> dict[str, float]:
    """The request counters of one ``ghaf serve`` (``TARGET/metrics``, no credential;
    see :func:`~ghaf.serving.scrape.fetch_metrics` for the retries).

    Raises:
        ScrapeError: no answer, not 200, too large, or no ``ghaf_requests_total``.
    """
    url = f"{target}/metrics"
    text = fetch_metrics(target, timeout, attempts)
    if REQUESTS not in text and SERVE_MARKER not in text:  # a fresh server counts nothing yet
        raise ScrapeError(f"{url} is not a ghaf serve's metrics (no {REQUESTS})")
    return parse_requests(text)


def scrape_all(targets: list[str]) -> Counters:
    """Every target's counters.

    Raises:
        ScrapeError: naming the first target that gave none.
    """
    return {target: scrape_requests(target) for target in targets}


def count_since(
    baseline: Counters, current: Counters, model: str, version: str
) -> tuple[float, float]:
    """(requests, 5xx answers) of ``model:version`` since ``baseline``, over every target."""
    requests = errors = 0.0
    for target, series in current.items():
        before = baseline.get(target, {})
        for key, value in series.items():
            name, v, code = key.rsplit(":", 2)
            if name != model or v != version:
                continue
            start = before.get(key, 0.0)
            grown = value - start if value >= start else value  # restarted: counts from 0
            requests += grown
            if code.startswith("5"):
                errors += grown
    return requests, errors


_ANSWERS_SQL = """
select request_id, ts, version, latency_ms, unit, r[len(r)] as score,
    case when isnan(list_sum(r)) then null
         when len(r) > 1 then list_position(r, list_max(r)) - 1
         when len(r) = 1 then (r[1] >= $threshold)::int end as top
from (
    select request_id, ts, version, latency_ms, unit, map_values(outputs)[1][1] as r
    from log
    where model = $model and not coalesce(shadow, false) and ts >= $since
      and list_contains($versions, version)
)
"""

_LABELS_SQL = """
with o as (select request_id, unit, value, ts from outcomes),
by_request as (
    select request_id, arg_max(value, ts) as value from o
    where request_id is not null group by request_id
),
by_unit as (select unit, arg_max(value, ts) as value from o where unit is not null group by unit)
select a.i, coalesce(r.value, u.value) as label
from answers a
left join by_request r on r.request_id = a.request_id
left join by_unit u on a.unit is not null and u.unit = a.unit
order by a.i
"""


_LOG_COLUMNS = ("request_id", "ts", "model", "version", "latency_ms", "outputs", "unit", "shadow")


def _read_log_since(log_dir: Path, since_ms: float, keys: KeyProvider | None) -> pa.Table:
    """The log's columns the evaluator reads, from the files written since ``since_ms``
    only (a file is written after every record it holds), decrypted with ``keys``; a
    column an older file lacks reads as nulls (``shadow``: false), a file that is no log
    is skipped."""
    schema = pa.schema([LOG_SCHEMA.field(n) for n in _LOG_COLUMNS])
    tables = []
    for path in log_files(log_dir, since=since_ms / 1000.0):
        try:
            table = read_log_table(path, _LOG_COLUMNS, keys=keys)
        except (pa.ArrowInvalid, OSError):
            continue
        have = set(table.column_names)
        for name in _LOG_COLUMNS:
            if name not in have:
                fill = pa.array([False] * table.num_rows) if name == "shadow" else None
                field_ = schema.field(name)
                table = table.append_column(
                    field_, fill if fill is not None else pa.nulls(table.num_rows, field_.type)
                )
        tables.append(table.select(list(_LOG_COLUMNS)).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_answers(
    log_dir: Path,
    model: str,
    versions: list[str],
    since_ms: float,
    threshold: float,
    *,
    keys: KeyProvider | None = None,
) -> pa.Table:
    """The live answers of ``model``'s ``versions`` logged since ``since_ms``: request id,
    ts, version, latency_ms, unit, score and top (predicted class), from the log
    decrypted with ``keys``."""
    log = _read_log_since(log_dir, since_ms, keys)
    connection = duckdb.connect()
    try:
        connection.register("log", log)
        params = {"model": model, "versions": versions, "since": since_ms, "threshold": threshold}
        return connection.sql(_ANSWERS_SQL, params=params).to_arrow_table()
    finally:
        connection.close()


def join_labels(answers: pa.Table, outcomes: pa.Table) -> np.ndarray:
    """Each answer's label (the latest outcome for its request id, else its unit), NaN
    where none has arrived; in ``answers``' order."""
    connection = duckdb.connect()
    try:
        indexed = answers.select(["request_id", "unit"]).append_column(
            "i", pa.array(np.arange(answers.num_rows))
        )
        connection.register("answers", indexed)
        connection.register("outcomes", outcomes)
        joined = connection.sql(_LABELS_SQL).to_arrow_table()
    finally:
        connection.close()
    labels = joined.column("label").to_numpy(zero_copy_only=False)
    return np.asarray(labels, dtype=np.float64)


@dataclass
class Side:
    """One version's evidence: answers logged (latencies, scores), labels judged, and its
    requests and 5xx answers by the serving counters (None: no counters)."""

    predictions: int = 0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))
    labelled: int = 0
    successes: int = 0
    not_labels: int = 0
    """Outcomes that are not a class (accuracy) or not 0/1 (success rate)."""
    requests: float | None = None
    errors: float | None = None

    def samples(self) -> dict[str, int]:
        out = {"predictions": self.predictions, "labelled": self.labelled}
        if self.requests is not None:
            out["requests"] = int(self.requests) if math.isfinite(self.requests) else -1
        return out


@dataclass
class Evidence:
    """What one evaluation read, and which sources gave nothing (``problems``)."""

    window_start: datetime
    window_end: datetime
    canary: Side
    champion: Side
    counters: Counters | None
    problems: dict[str, str] = field(default_factory=dict)
    """Source -> why it gave nothing: ``metrics``, ``prediction_log``, ``routing``."""


def _judge(top: np.ndarray, labels: np.ndarray, kind: str) -> tuple[int, int, int]:
    """(labelled, successes, outcomes that are no label) of answers with a label."""
    has = ~np.isnan(labels)
    values = labels[has]
    if kind == "success_rate":
        binary = (values == 0.0) | (values == 1.0)
        return int(binary.sum()), int((values[binary] == 1.0).sum()), int((~binary).sum())
    classes = values == np.round(values)
    predicted = top[has][classes]
    correct = (~np.isnan(predicted)) & (predicted == values[classes])
    return int(classes.sum()), int(correct.sum()), int((~classes).sum())


def _count_requests(
    evidence: Evidence, canary: Canary, targets: list[str], baseline: Counters | None
) -> None:
    try:
        evidence.counters = scrape_all(targets)
    except ScrapeError as exc:
        evidence.problems["metrics"] = str(exc)
        return
    missing = [t for t in targets if t not in (baseline or {})]
    if missing:
        evidence.problems["metrics"] = f"no counters from {missing[0]} at the step's start"
        return
    for side, ref in ((evidence.canary, canary.candidate), (evidence.champion, canary.champion)):
        version = ref.rpartition(":")[2]
        side.requests, side.errors = count_since(
            baseline or {}, evidence.counters, canary.model, version
        )


def _column(table: pa.Table, name: str, dtype: Any = np.float64) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype)


def _read_log(
    evidence: Evidence, platform: Platform, canary: Canary, plan: RolloutPlan, log_dir: Path
) -> None:
    quality = plan.quality
    champion_v = canary.champion.rpartition(":")[2]
    candidate_v = canary.candidate.rpartition(":")[2]
    step_ms = canary.step_started_at.timestamp() * 1000.0
    life_ms = canary.created_at.timestamp() * 1000.0
    reference_ms = life_ms - (quality.reference_s if quality else 0.0) * 1000.0
    threshold = quality.threshold if quality else 0.5
    answers = read_answers(
        log_dir,
        canary.model,
        [champion_v, candidate_v],
        min(reference_ms, step_ms),
        threshold,
        keys=prediction_log_keys(platform),
    )
    ts, versions = _column(answers, "ts"), _column(answers, "version", object)
    latency, score = _column(answers, "latency_ms"), _column(answers, "score")
    seen = ts <= evidence.window_end.timestamp() * 1000.0  # a replay's later traffic waits
    in_step = (versions == candidate_v) & (ts >= step_ms) & seen
    reference = (versions == champion_v) & (ts >= reference_ms) & seen
    for side, mask in ((evidence.canary, in_step), (evidence.champion, reference)):
        side.predictions = int(mask.sum())
        side.latencies_ms, side.scores = latency[mask], score[mask]
    if quality is None:
        return
    outcomes = read_outcomes(platform.in_project(canary.project), canary.model, quality.metric)
    labels = join_labels(answers, outcomes.select(["request_id", "unit", "value", "ts"]))
    top = _column(answers, "top")
    lived = (versions == candidate_v) & (ts >= life_ms) & seen
    for side, mask in ((evidence.canary, lived), (evidence.champion, reference)):
        side.labelled, side.successes, side.not_labels = _judge(
            top[mask], labels[mask], quality.kind
        )


def gather_evidence(
    platform: Platform,
    canary: Canary,
    plan: RolloutPlan,
    log_dir: Path,
    baseline: Counters | None,
    now: datetime,
    routing_problem: str | None = None,
) -> Evidence:
    """Read every source for one evaluation of ``canary`` at ``now``: the candidate's
    requests, answers and latencies of the step, its labels since it started; the
    champion's requests of the step and its answers and labels since ``reference_s``
    before the canary started. A source that is down or absent never raises: it is
    named in ``problems``."""
    evidence = Evidence(canary.step_started_at, now, Side(), Side(), None)
    if routing_problem:
        evidence.problems["routing"] = routing_problem
    if plan.metrics:
        try:
            for target in plan.metrics:  # the operator may have narrowed it since the start
                check_allowed(target, platform.settings.server.fetch_allow)
        except PolicyViolationError as exc:
            evidence.problems["metrics"] = exc.headline
        else:
            _count_requests(evidence, canary, plan.metrics, baseline)
    if not Path(log_dir).is_dir():
        evidence.problems["prediction_log"] = (
            f"no prediction log at {log_dir} (serve with --log-dir {log_dir})"
        )
        return evidence
    _read_log(evidence, platform, canary, plan, Path(log_dir))
    return evidence
