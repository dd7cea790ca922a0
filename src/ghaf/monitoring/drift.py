"""Univariate drift: compare two profiles column by column, then correct across columns."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import numpy as np

from ghaf.monitoring import stats
from ghaf.monitoring.base import (
    DEFAULT_THRESHOLDS,
    TESTS,
    ColumnDrift,
    DriftOptions,
    DriftReport,
    Histogram,
)
from ghaf.monitoring.profile import OTHER, ColumnSummary, Profile

HISTOGRAM_BINS = 30
TOP_CATEGORIES = 12


def compare_profiles(
    reference: Profile,
    current: Profile,
    options: DriftOptions | None = None,
    *,
    reference_name: str = "reference",
    current_name: str = "current",
) -> DriftReport:
    """Compare every reference column with the current window; never raises per column.

    A column missing from the current window, of another kind, all null, too small or
    skipped gets that verdict instead of a test.
    """
    options = options or DriftOptions()
    started = time.perf_counter()
    results = [_column(name, reference, current, options) for name in reference.columns]
    _correct(results, options)
    report = DriftReport(
        reference_name=reference_name,
        current_name=current_name,
        reference_rows=reference.num_rows,
        current_rows=current.num_rows,
        columns=sorted(results, key=lambda c: -c.score),
        alpha=options.alpha,
        sampled=not (reference.exact and current.exact),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if options.domain_classifier:
        from ghaf.monitoring.domain import domain_classifier

        report.domain = domain_classifier(reference, current)
    report.seconds = time.perf_counter() - started
    return report


def _default_threshold(method: str, options: DriftOptions) -> float:
    return options.alpha if method in TESTS else DEFAULT_THRESHOLDS[method]


def _missing_rate(summary: ColumnSummary) -> float:
    return summary.nulls / summary.count if summary.count else 0.0


def _column(name: str, reference: Profile, current: Profile, options: DriftOptions) -> ColumnDrift:
    ref = reference.columns[name]
    override = options.overrides.get(name)
    default_method = "ks" if ref.kind == "numeric" else "chi2"
    method = (override.method if override and override.method else None) or default_method
    threshold = override.threshold if override and override.threshold is not None else None
    result = ColumnDrift(
        column=name,
        kind=ref.kind,
        method=method,
        verdict="ok",
        threshold=threshold if threshold is not None else _default_threshold(method, options),
        reference_rows=ref.non_null,
        reference_missing=_missing_rate(ref),
    )
    cur = current.columns.get(name)
    if override and override.skip:
        return _verdict(result, "skipped", "skipped by a per-column override")
    if ref.kind == "other":
        return _verdict(result, "skipped", f"{ref.dtype} columns are not compared")
    if cur is None:
        return _verdict(result, "missing", "column is missing from the current window")
    result.current_rows = cur.non_null
    result.current_missing = _missing_rate(cur)
    if cur.kind != ref.kind:
        return _verdict(
            result, "type mismatch", f"reference is {ref.dtype}, current is {cur.dtype}"
        )
    if (ref.kind, method) in (("numeric", "chi2"), ("numeric", "tv")) or (
        ref.kind,
        method,
    ) in (("categorical", "ks"), ("categorical", "wasserstein")):
        fallback = default_method
        result.note = f"{method} does not apply to {ref.kind} columns; used {fallback}"
        method = result.method = fallback
        if threshold is None:
            result.threshold = _default_threshold(method, options)
    if ref.non_null == 0 or cur.non_null == 0:
        side = "reference" if ref.non_null == 0 else "current window"
        return _verdict(result, "all null", f"every value is null in the {side}")
    if ref.kind == "numeric":
        _numeric(result, reference.sorted_values(name), current.sorted_values(name), options)
    else:
        _categorical(result, reference, current, name)
    if min(result.reference_rows, result.current_rows) < options.min_rows:
        return _verdict(
            result,
            "insufficient data",
            f"fewer than {options.min_rows} non-null values on a side",
        )
    if method in TESTS:
        result.statistic = result.distances[method + "_statistic"]
        result.p_value = result.distances[method + "_p_value"]
    else:
        result.statistic = result.distances[method]
        result.verdict = "drift" if result.statistic >= (result.threshold or 0.0) else "ok"
    return result


def _verdict(result: ColumnDrift, verdict: str, note: str) -> ColumnDrift:
    result.verdict = verdict  # type: ignore[assignment]
    result.note = note
    return result


def _numeric(result: ColumnDrift, ref: np.ndarray, cur: np.ndarray, options: DriftOptions) -> None:
    if ref.size == 0 or cur.size == 0:
        result.reference_rows = min(result.reference_rows, ref.size)
        result.current_rows = min(result.current_rows, cur.size)
        return
    pair = stats.two_sample(ref, cur)
    spread = float(np.std(ref))
    normalized = pair.wasserstein / spread if spread > 0 else pair.wasserstein
    if spread == 0:
        result.note = "reference has a single distinct value: Wasserstein is not normalized"
    edges = stats.quantile_edges(ref, options.bins)
    counts = np.vstack([stats.bin_counts(ref, edges), stats.bin_counts(cur, edges)]).astype(
        np.float64
    )
    result.distances = {
        "ks_statistic": pair.ks_statistic,
        "ks_p_value": pair.ks_pvalue,
        "wasserstein": float(normalized),
        "wasserstein_raw": pair.wasserstein,
        "psi": float(stats.psi(counts[0], counts[1])),
        "js": float(stats.jensen_shannon(counts[0], counts[1])),
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
    }
    result.histogram = _numeric_histogram(ref, cur)


def _numeric_histogram(ref: np.ndarray, cur: np.ndarray) -> Histogram:
    qs = np.array([0.005, 0.995])
    (r_lo, r_hi), (c_lo, c_hi) = stats.sorted_quantiles(ref, qs), stats.sorted_quantiles(cur, qs)
    lo, hi = float(min(r_lo, c_lo)), float(max(r_hi, c_hi))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    inner = edges[1:-1]
    ref_p = stats.bin_counts(ref, inner) / ref.size
    cur_p = stats.bin_counts(cur, inner) / cur.size
    return Histogram(
        labels=[f"{a:.4g}..{b:.4g}" for a, b in itertools.pairwise(edges)],
        reference=[round(float(x), 6) for x in ref_p],
        current=[round(float(x), 6) for x in cur_p],
        edges=[float(e) for e in edges],
    )


def _category_counts(profile: Profile, name: str, exact: bool) -> dict[str, int]:
    if exact:
        return profile.columns[name].categories
    values = profile.sample.column(name).drop_null()
    import pyarrow.compute as pc

    counts = pc.value_counts(values)
    return dict(
        zip(
            counts.field("values").to_pylist(),
            counts.field("counts").to_pylist(),
            strict=True,
        )
    )


def _categorical(result: ColumnDrift, reference: Profile, current: Profile, name: str) -> None:
    ref_all = reference.columns[name].categories
    cur_all = current.columns[name].categories
    keys = sorted(set(ref_all) | set(cur_all))
    ref_counts = np.array([ref_all.get(k, 0) for k in keys], dtype=np.float64)
    cur_counts = np.array([cur_all.get(k, 0) for k in keys], dtype=np.float64)
    # The test follows the same sample-size rule as KS: on the samples when sampled.
    exact = reference.exact and current.exact
    ref_test = _category_counts(reference, name, exact)
    cur_test = _category_counts(current, name, exact)
    statistic, p_value, _dof = stats.chi_square(
        np.array([ref_test.get(k, 0) for k in keys], dtype=np.int64),
        np.array([cur_test.get(k, 0) for k in keys], dtype=np.int64),
    )
    unseen = [k for k in cur_all if k not in ref_all and k != OTHER]
    result.distances = {
        "chi2_statistic": statistic,
        "chi2_p_value": p_value,
        "tv": float(stats.total_variation(ref_counts, cur_counts)),
        "js": float(stats.jensen_shannon(ref_counts, cur_counts)),
        "psi": float(stats.psi(ref_counts, cur_counts)),
        "unseen_categories": float(len(unseen)),
    }
    if unseen:
        shown = ", ".join(map(repr, unseen[:5]))
        result.note = f"{len(unseen)} categories unseen in the reference: {shown}"
    ref_p = ref_counts / max(ref_counts.sum(), 1)
    cur_p = cur_counts / max(cur_counts.sum(), 1)
    order = np.argsort(-np.maximum(ref_p, cur_p), kind="stable")
    top, rest = order[:TOP_CATEGORIES], order[TOP_CATEGORIES:]
    labels = [keys[i] for i in top]
    ref_bars = [float(ref_p[i]) for i in top]
    cur_bars = [float(cur_p[i]) for i in top]
    if rest.size:
        labels.append(f"{rest.size} more")
        ref_bars.append(float(ref_p[rest].sum()))
        cur_bars.append(float(cur_p[rest].sum()))
    result.histogram = Histogram(
        labels=labels,
        reference=[round(x, 6) for x in ref_bars],
        current=[round(x, 6) for x in cur_bars],
    )


def _correct(results: list[ColumnDrift], options: DriftOptions) -> None:
    """Benjamini-Hochberg across every tested column; verdicts from the adjusted p-values."""
    tested = [
        r for r in results if r.method in TESTS and r.p_value is not None and r.verdict == "ok"
    ]
    if not tested:
        return
    adjusted = stats.benjamini_hochberg(np.array([r.p_value for r in tested], dtype=np.float64))
    for result, q in zip(tested, adjusted, strict=True):
        result.adjusted_p = float(q)
        result.verdict = "drift" if q <= (result.threshold or options.alpha) else "ok"
