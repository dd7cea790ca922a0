"""Demo stage: compare the training window with the drift period; store the reference profile."""

from __future__ import annotations

from ghaf.demo.runner import DemoContext

FEATURES = ("amount_aed", "merchant_category", "channel", "country", "hour")


def monitor_drift(ctx: DemoContext) -> str:
    """Profile the training window once (stored), check the drift period, write the report."""
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.report_html import render_html
    from ghaf.monitoring.store import save_profile

    paths = ctx.results["bank_paths"]
    columns = list(FEATURES)
    reference = profile_window(paths["transactions"], columns=columns)
    stored = save_profile(
        ctx.platform,
        ctx.platform.admin(),
        "transactions_training",
        reference,
        source=str(paths["transactions"]),
    )
    current = profile_window(paths["drift_transactions"], columns=columns)
    report = compare_profiles(
        reference,
        current,
        DriftOptions(),
        reference_name="training window (days 0-90)",
        current_name="drift period (days 90-120)",
    )
    html = ctx.workdir / "drift_report.html"
    html.write_text(render_html(report), encoding="utf-8")
    ctx.results["drift_report"] = report
    ctx.results["drift_report_html"] = html
    drifted = report.drifted_columns
    domain = report.domain
    auc = f", domain AUC {domain.auc:.2f}" if domain is not None else ""
    return (
        f"{len(drifted)}/{len(columns)} features drifted ({', '.join(drifted) or 'none'}){auc}; "
        f"profile {stored.name}@{stored.version}; report {html.name}"
    )
