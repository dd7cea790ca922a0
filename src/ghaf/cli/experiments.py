"""``ghaf experiments``: A/B experiments, and the statistics that judge them.

``analyze`` and ``report`` run the statistics engine (:mod:`ghaf.experiments.stats`) on
a table of units, one row per unit (a Parquet or CSV file), so an analyst can use it on
any experiment's export; ``sample-size`` plans one. They read no home and need no login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json

app = typer.Typer(
    help="A/B experiments: analyze a table of units, write the HTML report.",
    no_args_is_help=True,
)

DataOption = Annotated[
    Path, typer.Option("--data", help="A Parquet or CSV file with one row per unit.")
]
VariantColOption = Annotated[
    str, typer.Option("--variant-col", help="The column naming each unit's variant.")
]
MetricColOption = Annotated[
    str, typer.Option("--metric-col", help="The goal metric: 0/1 conversions or a number.")
]
CovariateOption = Annotated[
    str | None,
    typer.Option("--covariate", help="A pre-period column for CUPED variance reduction."),
]
ControlOption = Annotated[
    str | None,
    typer.Option("--control", help="The control variant (default: the first in sorted order)."),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Planned split for the sample-ratio check, e.g. control=50,treatment=50 "
        "(default: equal).",
    ),
]
SequentialOption = Annotated[
    bool,
    typer.Option(
        "--sequential/--fixed",
        help="Always-valid mSPRT (safe to look daily) or the fixed-horizon test.",
    ),
]
AlphaOption = Annotated[float, typer.Option("--alpha", help="Significance level.")]
KindOption = Annotated[
    str,
    typer.Option("--kind", help="proportion, mean, or auto (0/1 values mean proportion)."),
]
GuardrailOption = Annotated[
    list[str] | None,
    typer.Option(
        "--guardrail",
        help="COLUMN:lower or COLUMN:higher (which way is better), optionally :MARGIN of "
        "tolerated worsening in the column's unit, e.g. latency_ms:lower:5. Repeatable.",
    ),
]
TimeColOption = Annotated[
    str | None,
    typer.Option("--time-col", help="A time column: the report shows lift as it accrued."),
]
Tau2Option = Annotated[
    float | None,
    typer.Option(
        "--tau2",
        help="mSPRT mixing variance of the effect (default: the squared minimum effect "
        "of interest, see ghaf.experiments.stats.sequential).",
    ),
]


def _spec(
    data: Path,
    variant_col: str,
    metric_col: str,
    covariate: str | None,
    control: str | None,
    weights: str | None,
    sequential: bool,
    alpha: float,
    kind: str,
    guardrails: list[str] | None,
    tau2: float | None,
) -> Any:
    from ghaf.experiments.stats.table import TableSpec

    return TableSpec.parse(
        data=data,
        variant_col=variant_col,
        metric_col=metric_col,
        covariate_col=covariate,
        control=control,
        weights=weights,
        sequential=sequential,
        alpha=alpha,
        kind=kind,
        guardrails=guardrails or [],
        tau2=tau2,
    )


@app.command("analyze")
def analyze(
    ctx: typer.Context,
    data: DataOption,
    variant_col: VariantColOption,
    metric_col: MetricColOption,
    covariate: CovariateOption = None,
    control: ControlOption = None,
    weights: WeightsOption = None,
    sequential: SequentialOption = False,
    alpha: AlphaOption = 0.05,
    kind: KindOption = "auto",
    guardrail: GuardrailOption = None,
    tau2: Tau2Option = None,
    output: OutputOption = Output.table,
) -> None:
    """Analyze an experiment's table of units: lift, intervals, sample ratio, decision.

    JSON (``--output json``): ``{"analysis": {...}}`` with ``goal`` (every number the test
    used), ``srm``, ``guardrails``, ``cuped`` (or null) and ``decision`` (verdict ship,
    stop, keep_running or blocked, with its reasons).
    """
    from ghaf.experiments.stats.table import analyze_table

    cli = state(ctx)
    spec = _spec(
        data,
        variant_col,
        metric_col,
        covariate,
        control,
        weights,
        sequential,
        alpha,
        kind,
        guardrail,
        tau2,
    )
    result = analyze_table(spec)
    if output is Output.json:
        emit_json({"analysis": result.to_dict()})
        return
    from ghaf.experiments.stats.render import print_analysis

    print_analysis(cli.console, result)


@app.command("report")
def report(
    data: DataOption,
    variant_col: VariantColOption,
    metric_col: MetricColOption,
    out: Annotated[Path, typer.Option("--out", help="Where to write the HTML page.")],
    covariate: CovariateOption = None,
    control: ControlOption = None,
    weights: WeightsOption = None,
    sequential: SequentialOption = False,
    alpha: AlphaOption = 0.05,
    kind: KindOption = "auto",
    guardrail: GuardrailOption = None,
    time_col: TimeColOption = None,
    tau2: Tau2Option = None,
) -> None:
    """Write a self-contained HTML report: lift with intervals over time, sample ratio,
    guardrails and the decision."""
    from ghaf.experiments.stats.report import write_report
    from ghaf.experiments.stats.table import analyze_table, lift_over_time

    spec = _spec(
        data,
        variant_col,
        metric_col,
        covariate,
        control,
        weights,
        sequential,
        alpha,
        kind,
        guardrail,
        tau2,
    )
    result = analyze_table(spec)
    series = lift_over_time(spec, time_col) if time_col else None
    write_report(out, result, series)
    typer.echo(f"wrote {out}")


@app.command("sample-size")
def sample_size(
    ctx: typer.Context,
    baseline: Annotated[
        float, typer.Option("--baseline", help="Control conversion rate, e.g. 0.10.")
    ],
    mde: Annotated[
        float, typer.Option("--mde", help="Absolute lift to detect, e.g. 0.02 (two points).")
    ],
    alpha: AlphaOption = 0.05,
    power: Annotated[float, typer.Option("--power", help="Chance of detecting the lift.")] = 0.8,
    ratio: Annotated[
        float, typer.Option("--ratio", help="Treatment units per control unit.")
    ] = 1.0,
    output: OutputOption = Output.table,
) -> None:
    """Units per variant a two-proportion test needs to detect a lift (plan before starting).

    JSON (``--output json``): ``{"sample_size": {...}}`` with ``n_control``,
    ``n_treatment``, ``n_total``, ``effect_size`` (Cohen's h) and the inputs.
    """
    from ghaf.experiments.stats import two_proportion_sample_size

    plan = two_proportion_sample_size(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    if output is Output.json:
        emit_json({"sample_size": plan.to_dict()})
        return
    state(ctx).console.print(
        f"{plan.n_control} control + {plan.n_treatment} treatment = {plan.n_total} units "
        f"to detect {mde:+g} on {baseline:g} at alpha {alpha:g} with power {power:g} "
        f"(fixed horizon: look once, at that n)"
    )


# Experiments over deployments: create, start, status, stop, decide, list, outcomes import
from ghaf.cli.experiment_lifecycle import register  # noqa: E402 - after this group's own

register(app)

# Canaries: start, status, step, watch, pause, resume, rollback, list
from ghaf.cli.canary import app as canary_app  # noqa: E402 - after this group's own

app.add_typer(canary_app, name="canary")
