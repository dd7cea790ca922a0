"""An experiment's units, joined to their outcomes, judged by the statistics engine.

One row per unit from the prediction log (the experiment's live answers: not shadows,
not the holdout), its variant the first it was served, its latency the mean of its
requests; its goal value the mean of the outcomes reported for it, by the request id of
one of its predictions or by its unit id, whenever they arrived. A unit with no outcome
yet has no goal value (the engine counts it as missing, never as a zero).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ghaf.errors import InvalidInputError
from ghaf.experiments.records import Experiment
from ghaf.experiments.stats.table import TableSpec, analyze_table
from ghaf.platform import Platform
from ghaf.serving.outcomes import read_outcomes
from ghaf.serving.predlog import prediction_log_keys, read_prediction_log
from ghaf.serving.traffic import HOLDOUT

_UNITS_SQL = """
with p as (
    select request_id, unit, model || ':' || variant as variant, latency_ms, ts
    from log
    where experiment = $experiment and not shadow and unit is not null
      and variant <> $holdout
),
units as (
    select unit, arg_min(variant, ts) as variant, avg(latency_ms) as latency_ms
    from p group by unit
),
labelled as (
    select coalesce(o.unit, p.unit) as unit, o.value
    from outcomes o left join p on o.request_id is not null and o.request_id = p.request_id
),
goal as (select unit, avg(value) as goal from labelled where unit is not null group by unit)
select units.unit, units.variant, goal.goal, units.latency_ms
from units left join goal using (unit)
order by units.unit
"""


def unit_table(log: pa.Table, outcomes: pa.Table, experiment: str) -> pa.Table:
    """One row per unit of ``experiment``: unit, variant (ref), goal (or null), latency_ms."""
    connection = duckdb.connect()
    try:
        connection.register("log", log)
        connection.register("outcomes", outcomes)
        params = {"experiment": experiment, "holdout": HOLDOUT}
        result = connection.sql(_UNITS_SQL, params=params).to_arrow_table()
    finally:
        connection.close()
    return result


def analyze_experiment(
    platform: Platform, record: Experiment, log_dir: Path, *, sequential: bool = True
) -> dict[str, Any]:
    """The engine's Analysis (as JSON) of ``record`` from ``log_dir`` and its outcomes.

    Raises:
        InvalidInputError: no prediction log at ``log_dir``, or a variant has no unit
            logged yet (too early to analyze).
    """
    if not Path(log_dir).is_dir():
        raise InvalidInputError(
            f"no prediction log at {log_dir}",
            hint="serve with --log-dir DIR and give the same directory (--log-dir)",
        )
    columns = ["request_id", "ts", "model", "variant", "latency_ms", "unit", "experiment", "shadow"]
    log = read_prediction_log(Path(log_dir), columns, keys=prediction_log_keys(platform))
    model = record.control.rpartition(":")[0]
    outcomes = read_outcomes(platform.in_project(record.project), model, record.goal)
    units = unit_table(log, outcomes.select(["request_id", "unit", "value"]), record.name)
    seen = set(units.column("variant").to_pylist())
    empty = [v for v in record.variants if v not in seen]
    if empty:
        raise InvalidInputError(
            f"experiment {record.name!r}: no unit logged for variant(s) {', '.join(empty)} yet",
            hint="let it run longer (and check the servers log predictions with --log-dir)",
        )
    if len(record.variants) != 2:
        raise InvalidInputError(
            f"experiment {record.name!r} has {len(record.variants)} variants; decide compares two",
            hint="run one experiment per treatment against the control",
        )
    weights = ",".join(f"{ref}={w}" for ref, w in record.variants.items())
    # The units stay in memory: the prediction log is sealed at rest, and a plaintext
    # Parquet copy in a temporary directory would undo that.
    spec = TableSpec.parse(
        data=Path(log_dir) / "units",
        variant_col="variant",
        metric_col="goal",
        control=record.control,
        weights=weights,
        sequential=sequential,
        guardrails=record.guardrails,
        table=units,
    )
    analysis = analyze_table(spec)
    doc: dict[str, Any] = analysis.to_dict()
    doc["source"] = str(log_dir)
    doc["goal_metric"] = record.goal
    doc["labelled_units"] = int(units.column("goal").drop_null().__len__())
    return doc
