"""Demo stage: monitor what was served. The replayed window of the prediction log (the
features the server scored, looked-up ones included, as named columns) against the
champion's training profile: the profile of the training set its lineage names, made
once and stored as ``MODEL-vN-training``, the same reference the scheduled monitors use."""

from __future__ import annotations

from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Champion, Replay, Served, ServedDrift
from ghaf.errors import InvalidInputError


def monitor_served(env: DemoEnv, champion: Champion, served: Served, replay: Replay) -> ServedDrift:
    """Drift of the replayed window against the training profile, with an HTML report.

    Raises:
        InvalidInputError: the champion has no training profile, or nothing was logged.
    """
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.references import training_profile
    from ghaf.monitoring.report_html import render_html
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_windows

    platform = env.platform
    model, version = served.model, served.version
    stored, why = training_profile(platform, platform.admin(), model, version)
    if stored is None:
        raise InvalidInputError(f"no training profile for {model}:{version}: {why}")
    reference_ref = f"profile:{stored.name}@{stored.version}"
    reference = profile_window(reference_ref, platform)
    windows = read_prediction_windows(
        served.log_dir, model, start_ms=replay.logged_from_ms, keys=prediction_log_keys(platform)
    )
    window = windows.get(version)
    if window is None or window.rows == 0:
        raise InvalidInputError(
            f"the prediction log under {served.log_dir} has no rows of {model}:{version}",
            hint="run the replay stage first",
        )
    current = profile_window(window.features)
    report = compare_profiles(
        reference,
        current,
        # Per-feature tests, as the scheduled monitors run them; the domain classifier
        # (a model trained to tell the windows apart) would cost more than the stage.
        DriftOptions(domain_classifier=False),
        reference_name=f"training set of {champion.version.ref} ({champion.training_set_ref})",
        current_name=f"served from {replay.start:%Y-%m-%d %H:%M} (prediction log)",
    )
    html = env.workdir / "drift_report.html"
    html.write_text(render_html(report), encoding="utf-8")
    return ServedDrift(model, version, window.rows, reference_ref, report, html)
