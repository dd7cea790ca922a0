"""The analysis of a table of units (Parquet or CSV, one row per unit): what the CLI's
``ghaf experiments analyze`` and ``report`` run.

Units with no value in the goal metric (labels not arrived yet) count for the sample
ratio but not for the test, and the analysis says how many there were. CUPED turns a
0/1 goal into a continuous one, so with ``--covariate`` the goal is tested by Welch's t
(or the mSPRT) on the adjusted values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.cuped import CupedResult, cuped
from ghaf.experiments.stats.decision import Decision, Guardrail, TestResult, decide
from ghaf.experiments.stats.fixed import two_proportion_z, welch_t
from ghaf.experiments.stats.groups import GroupStats, check_alpha, jsonable
from ghaf.experiments.stats.sequential import msprt
from ghaf.experiments.stats.series import LiftSeries, lift_series
from ghaf.experiments.stats.srm import SrmResult, sample_ratio_check

KINDS = ("auto", "proportion", "mean")


@dataclass(frozen=True)
class GuardrailSpec:
    """A guardrail column, which way is better, and the worsening tolerated."""

    column: str
    higher_is_better: bool
    margin: float

    @classmethod
    def parse(cls, text: str) -> GuardrailSpec:
        """``COLUMN:lower|higher[:MARGIN]``."""
        parts = text.split(":")
        hint = "e.g. --guardrail latency_ms:lower:5 or --guardrail accuracy:higher"
        if len(parts) not in (2, 3) or parts[1] not in ("lower", "higher") or not parts[0]:
            raise InvalidInputError(
                f"--guardrail {text!r} must read COLUMN:lower or COLUMN:higher[:MARGIN]",
                hint=hint,
            )
        margin = 0.0
        if len(parts) == 3:
            try:
                margin = float(parts[2])
            except ValueError:
                raise InvalidInputError(
                    f"--guardrail {text!r}: margin {parts[2]!r} is not a number", hint=hint
                ) from None
            if not (math.isfinite(margin) and margin >= 0):
                raise InvalidInputError(
                    f"--guardrail {text!r}: margin must be a number >= 0", hint=hint
                )
        return cls(parts[0], parts[1] == "higher", margin)


@dataclass(frozen=True)
class TableSpec:
    """What to analyze and how, validated before any data is read."""

    data: Path
    variant_col: str
    metric_col: str
    covariate_col: str | None
    control: str | None
    weights: dict[str, float] | None
    sequential: bool
    alpha: float
    kind: str
    guardrails: tuple[GuardrailSpec, ...]
    tau2: float | None
    table: Any = None
    """The units already in memory (a ``pyarrow.Table``), read instead of ``data``: the
    experiment analysis of a live prediction log passes them so that no plaintext copy
    of the log is written to disk."""

    @classmethod
    def parse(
        cls,
        *,
        data: Path,
        variant_col: str,
        metric_col: str,
        covariate_col: str | None = None,
        control: str | None = None,
        weights: str | None = None,
        sequential: bool = False,
        alpha: float = 0.05,
        kind: str = "auto",
        guardrails: list[str] | tuple[str, ...] = (),
        tau2: float | None = None,
        table: Any = None,
    ) -> TableSpec:
        """Check every option; raise :class:`InvalidInputError` naming the one to fix.

        ``table`` (a ``pyarrow.Table``) is analyzed instead of reading ``data``, which
        then only names the source in the result."""
        if table is not None:
            pass
        elif data.suffix.lower() not in (".parquet", ".csv"):
            raise InvalidInputError(
                f"--data {data}: expected a .parquet or .csv file",
                hint="export the experiment's units (one row per unit) as Parquet or CSV",
            )
        elif not data.is_file():
            raise InvalidInputError(f"--data {data}: no such file", hint="check the path")
        check_alpha(alpha)
        if metric_col == variant_col or covariate_col in (variant_col, metric_col):
            raise InvalidInputError(
                f"--variant-col {variant_col!r}, --metric-col {metric_col!r} and --covariate "
                f"{covariate_col!r} must name different columns",
                hint="the variant, the goal metric and its pre-period covariate are three columns",
            )
        if kind not in KINDS:
            raise InvalidInputError(
                f"--kind {kind!r} is not one of {list(KINDS)}", hint="e.g. --kind mean"
            )
        if tau2 is not None and not (math.isfinite(tau2) and tau2 > 0):
            raise InvalidInputError(
                f"--tau2 {tau2} must be a positive number", hint="e.g. --tau2 0.0009"
            )
        return cls(
            data=data,
            variant_col=variant_col,
            metric_col=metric_col,
            covariate_col=covariate_col,
            control=control,
            weights=_weights(weights) if weights else None,
            sequential=sequential,
            alpha=alpha,
            kind=kind,
            guardrails=tuple(GuardrailSpec.parse(g) for g in guardrails),
            tau2=tau2,
            table=table,
        )


def _weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not name.strip() or not (math.isfinite(weight) and weight > 0):
            raise InvalidInputError(
                f"--weights {text!r}: {item!r} is not VARIANT=POSITIVE_NUMBER",
                hint="e.g. --weights control=50,treatment=50",
            )
        out[name.strip()] = weight
    return out


@dataclass(frozen=True)
class Analysis:
    """Everything ``analyze`` found: the goal test, guardrails, sample ratio and decision."""

    source: str
    units: int
    variant_col: str
    metric_col: str
    covariate_col: str | None
    kind: str
    control: str
    treatment: str
    sequential: bool
    missing_metric: dict[str, int]
    """Units per variant with no goal value (e.g. labels not arrived yet)."""
    goal: TestResult
    srm: SrmResult
    cuped: CupedResult | None
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def _read(spec: TableSpec, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The columns needed, as NumPy arrays (nulls as NaN in numeric columns)."""
    import pyarrow.compute as pc

    wanted = [spec.variant_col, spec.metric_col]
    wanted += [spec.covariate_col] if spec.covariate_col else []
    wanted += [g.column for g in spec.guardrails] + list(extra)
    wanted = list(dict.fromkeys(wanted))
    try:
        if spec.table is not None:
            table = spec.table
            schema_names = table.column_names
        elif spec.data.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            schema_names = pq.read_schema(spec.data).names
            table = pq.read_table(spec.data, columns=[c for c in wanted if c in schema_names])
        else:
            from pyarrow import csv

            table = csv.read_csv(spec.data)
            schema_names = table.column_names
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InvalidInputError(
            f"--data {spec.data}: cannot read it as {spec.data.suffix[1:]}: {exc}",
            hint="check the file is a valid Parquet or CSV export",
        ) from exc
    names = schema_names
    flags = {spec.variant_col: "--variant-col", spec.metric_col: "--metric-col"}
    if spec.covariate_col:
        flags[spec.covariate_col] = "--covariate"
    for column in wanted:
        if column not in names:
            flag = flags.get(column, "--guardrail" if column not in extra else "--time-col")
            raise InvalidInputError(
                f"{flag} {column!r}: no such column in {spec.data.name}",
                hint=f"the columns are {names}",
            )
    out: dict[str, Any] = {}
    variant = table.column(spec.variant_col)
    if variant.null_count:
        raise InvalidInputError(
            f"--variant-col {spec.variant_col!r}: {variant.null_count} units have no variant",
            hint="every unit must name the variant it was assigned to",
        )
    out[spec.variant_col] = np.asarray(pc.cast(variant, "string").to_pylist(), dtype=object)
    for column in wanted[1:]:
        if column in extra:
            out[column] = table.column(column).to_numpy(zero_copy_only=False)
            continue
        try:
            values = pc.cast(table.column(column), "float64")
        except Exception as exc:  # pyarrow.lib.ArrowInvalid/NotImplemented: not numeric
            raise InvalidInputError(
                f"column {column!r} is not numeric ({table.column(column).type})",
                hint="the metric, covariate and guardrail columns must hold numbers",
            ) from exc
        out[column] = values.to_numpy(zero_copy_only=False).astype(np.float64)
    out["__units__"] = table.num_rows
    return out


def _arms(spec: TableSpec, variants: npt.NDArray[Any]) -> tuple[str, str]:
    """Control and treatment: the planned ones (``--weights``) when given, so a variant
    that got no units at all is a sample-ratio mismatch, not a missing variant."""
    found = sorted({str(v) for v in variants.tolist()})
    names = sorted(spec.weights) if spec.weights else found
    stray = sorted(set(found) - set(names))
    if stray:
        raise InvalidInputError(
            f"--variant-col {spec.variant_col!r} has variants {stray[:10]} that --weights "
            f"does not plan ({names})",
            hint="give every variant in the data a weight, or filter the table",
        )
    if len(names) != 2:
        raise InvalidInputError(
            f"--variant-col {spec.variant_col!r} has {len(names)} variants {names[:10]}; "
            "analyze compares exactly two",
            hint="filter the table to the control and one treatment (with --weights naming "
            "both when one may have no units)",
        )
    control = spec.control if spec.control is not None else names[0]
    if control not in names:
        raise InvalidInputError(f"--control {control!r} is not a variant", hint=f"one of {names}")
    return control, next(n for n in names if n != control)


def _kind(spec: TableSpec, values: npt.NDArray[np.float64]) -> str:
    if spec.kind != "auto":
        return spec.kind
    present = values[~np.isnan(values)]
    return "proportion" if present.size and np.isin(present, (0.0, 1.0)).all() else "mean"


def _test(spec: TableSpec, kind: str, control: GroupStats, treatment: GroupStats) -> TestResult:
    if spec.sequential:
        return msprt(control, treatment, alpha=spec.alpha, tau2=spec.tau2)
    if kind == "proportion":
        return two_proportion_z(control, treatment, alpha=spec.alpha)
    return welch_t(control, treatment, alpha=spec.alpha)


def _groups(
    values: npt.NDArray[np.float64], variants: npt.NDArray[Any], arms: tuple[str, str]
) -> tuple[GroupStats, GroupStats]:
    found = []
    for name in arms:
        chosen = values[variants == name]
        found.append(GroupStats.from_values(name, chosen[~np.isnan(chosen)]))
    return found[0], found[1]


def analyze_table(spec: TableSpec) -> Analysis:
    """Read the table, test the goal and guardrails, check the sample ratio, decide."""
    columns = _read(spec)
    variants = columns[spec.variant_col]
    control, treatment = _arms(spec, variants)
    counts = {name: int((variants == name).sum()) for name in (control, treatment)}
    srm = sample_ratio_check(counts, spec.weights)
    y = columns[spec.metric_col]
    kind = _kind(spec, y)
    missing = {name: int(np.isnan(y[variants == name]).sum()) for name in (control, treatment)}
    adjusted: CupedResult | None = None
    if spec.covariate_col:
        known = ~np.isnan(y)
        adjusted = cuped(y[known], columns[spec.covariate_col][known], variants[known])
        goal = _test(spec, "mean", adjusted.group(control), adjusted.group(treatment))
    else:
        goal = _test(spec, kind, *_groups(y, variants, (control, treatment)))
    guardrails = []
    for g in spec.guardrails:
        values = columns[g.column]
        c, t = _groups(values, variants, (control, treatment))
        result = _test(spec, _kind(spec, values), c, t) if c.n and t.n else None
        guardrails.append(Guardrail(g.column, result, g.higher_is_better, g.margin))
    decision = decide(goal, guardrails, srm=srm, goal_name=spec.metric_col, alpha=spec.alpha)
    return Analysis(
        source=str(spec.data),
        units=int(columns["__units__"]),
        variant_col=spec.variant_col,
        metric_col=spec.metric_col,
        covariate_col=spec.covariate_col,
        kind="mean (CUPED)" if adjusted is not None else kind,
        control=control,
        treatment=treatment,
        sequential=spec.sequential,
        missing_metric=missing,
        goal=goal,
        srm=srm,
        cuped=adjusted,
        decision=decision,
    )


def lift_over_time(spec: TableSpec, time_col: str) -> LiftSeries:
    """The goal's lift and intervals as the units accrued, by ``time_col``."""
    columns = _read(spec, extra=(time_col,))
    variants = columns[spec.variant_col]
    arms = _arms(spec, variants)
    weights = spec.weights
    return lift_series(
        times=columns[time_col],
        variants=variants,
        values=columns[spec.metric_col],
        arms=arms,
        alpha=spec.alpha,
        tau2=spec.tau2,
        weights=(weights[arms[0]], weights[arms[1]]) if weights else (1.0, 1.0),
    )
