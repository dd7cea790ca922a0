"""W5 drift: Ghaf vs a per-column scipy baseline, Evidently and NannyML (own venvs), same run.

Each tool runs in its own process on the same Parquet files; CPU seconds are the
process's own (user + system, after imports: every tool pays its imports apart),
peak RSS from ``wait4``. Plus the scale figure: a 3M x 1,000 window streamed against
a stored reference profile.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.anchor_venvs import ensure
from benchmarks.common import Figure, run_command

ROOT = Path(__file__).resolve().parent.parent
W5_ROWS = {"smoke": 20_000, "full": 100_000}
SCALE = {"smoke": (50_000, 50, 20_000), "full": (3_000_000, 1_000, 500_000)}
PLANTED = ["cat_0", "num_00", "num_01", "num_02", "num_03", "num_04"]


def write_w5(directory: Path, rows: int, seed: int = 7) -> tuple[Path, Path]:
    """W5 of WORKLOADS.md as two Parquet files (same generator as the unit tests)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    levels = np.array([f"level_{k}" for k in range(10)])
    paths = []
    for name, shift in (("reference", False), ("current", True)):
        cols: dict[str, Any] = {}
        for i in range(20):
            cols[f"num_{i:02d}"] = rng.normal(0.1 if (shift and i < 5) else 0.0, 1.0, rows)
        for i in range(5):
            p = np.full(10, 0.1)
            if shift and i == 0:
                p[0] += 0.04
                p[1] -= 0.04
            cols[f"cat_{i}"] = levels[rng.choice(10, rows, p=p)]
        path = directory / f"{name}.parquet"
        pq.write_table(pa.table(cols), path)
        paths.append(path)
    return paths[0], paths[1]


# --- children: each prints one JSON line {"cpu": s, "flagged": [...], ...} -------------------

CHILD_PRELUDE = "import json, sys, time\n"

SCIPY_CHILD = """
import numpy as np, pyarrow.parquet as pq
from scipy import stats
t0 = time.process_time()
ref, cur = pq.read_table(sys.argv[1]), pq.read_table(sys.argv[2])
names, pvalues = [], []
for name in ref.column_names:
    a, b = ref.column(name).to_numpy(), cur.column(name).to_numpy()
    if a.dtype.kind == "f":
        p = stats.ks_2samp(a, b).pvalue
    else:
        keys = np.union1d(a, b)
        counts = np.vstack([np.bincount(np.searchsorted(keys, x), minlength=keys.size)
                            for x in (a, b)])
        p = stats.chi2_contingency(counts, correction=False).pvalue
    names.append(name); pvalues.append(p)
q = stats.false_discovery_control(np.array(pvalues))
flagged = [n for n, v in zip(names, q) if v <= 0.05]
print(json.dumps({"cpu": time.process_time() - t0, "flagged": flagged}))
"""

EVIDENTLY_CHILD = """
import os, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
t0 = time.process_time()
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
flagged = []
for metric in snapshot.dict()["metrics"]:
    cfg = metric["config"]
    if not cfg.get("type", "").endswith("ValueDrift"):
        continue
    value, threshold = metric["value"], cfg["threshold"]
    drift = value < threshold if "p_value" in cfg["method"] else value >= threshold
    if drift:
        flagged.append(cfg["column"])
cpu = time.process_time() - t0
snapshot.save_html(sys.argv[3])
print(json.dumps({"cpu": cpu, "flagged": sorted(flagged), "html": os.path.getsize(sys.argv[3])}))
"""

NANNYML_CHILD = """
import pandas as pd, nannyml as nml
t0 = time.process_time()
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
cats = [c for c in ref.columns if c.startswith("cat_")]
calc = nml.UnivariateDriftCalculator(column_names=list(ref.columns), treat_as_categorical=cats,
    chunk_number=10, continuous_methods=["jensen_shannon"], categorical_methods=["jensen_shannon"])
calc.fit(ref)
frame = calc.calculate(cur).filter(period="analysis").to_df()
flagged = sorted({col for col in ref.columns if frame[(col, "jensen_shannon", "alert")].any()})
print(json.dumps({"cpu": time.process_time() - t0, "flagged": flagged}))
"""


def _ghaf_child(mode: str, *args: str) -> None:
    """Runs in a fresh process (``python -m benchmarks.drift ghaf ...``)."""
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.profile import Profile
    from ghaf.monitoring.report_html import render_html

    t0 = time.process_time()
    if mode == "w5":
        ref, cur = profile_window(Path(args[0])), profile_window(Path(args[1]))
        report = compare_profiles(ref, cur, DriftOptions(domain_classifier=False))
        result: dict[str, Any] = {"cpu": time.process_time() - t0}
        result["flagged"] = sorted(report.drifted_columns)
    elif mode == "w5-full-report":
        ref, cur = profile_window(Path(args[0])), profile_window(Path(args[1]))
        report = compare_profiles(ref, cur)
        page = render_html(report)
        Path(args[2]).write_text(page, encoding="utf-8")
        result = {"cpu": time.process_time() - t0, "flagged": sorted(report.drifted_columns)}
        result["html"] = len(page.encode())
        result["domain_auc"] = report.domain.auc if report.domain else None
    else:  # scale: stream a wide window against a stored profile
        rows, cols = int(args[1]), int(args[2])
        wall = time.perf_counter()
        ref = Profile.from_bytes(Path(args[0]).read_bytes())
        cur = profile_window_stream(rows, cols, seed=8, shift_columns=10)
        report = compare_profiles(ref, cur, DriftOptions(domain_classifier=False))
        page = render_html(report)
        result = {
            "cpu": time.process_time() - t0,
            "wall": time.perf_counter() - wall,
            "flagged": len(report.drifted_columns),
            "html": len(page.encode()),
        }
    print(json.dumps(result))


def _wide_batches(rows: int, cols: int, seed: int, shift_columns: int = 0) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    names = [f"f{i:04d}" for i in range(cols)]
    shift = np.zeros(cols, dtype=np.float32)
    shift[:shift_columns] = 0.1
    batch = 50_000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        block = rng.standard_normal((cols, n), dtype=np.float32) + shift[:, None]
        yield pa.record_batch(list(block), names=names)


def profile_window_stream(rows: int, cols: int, seed: int, shift_columns: int = 0) -> Any:
    """Profile a generated window batch by batch (the data never exists in full)."""
    import pyarrow as pa

    from ghaf.monitoring.profile import build_profile

    schema = pa.schema([(f"f{i:04d}", pa.float32()) for i in range(cols)])
    return build_profile(_wide_batches(rows, cols, seed, shift_columns), schema=schema, seed=seed)


def _run(command: list[str]) -> tuple[dict[str, Any], float]:
    # No anchor may phone home (NannyML and Evidently send usage analytics by default).
    env = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1"}
    result, rss = run_command(command, env=env, cwd=ROOT)
    return result, rss


def _anchor(name: str, script: str, *args: str) -> tuple[dict[str, Any], float] | None:
    python = ensure(name)
    if python is None:
        return None
    try:
        return _run([str(python), "-c", CHILD_PRELUDE + script, *args])
    except RuntimeError as exc:
        print(f"# {name} failed: {exc}", file=sys.stderr)
        return None


def run(size_name: str) -> list[Figure]:
    me = [sys.executable, "-m", "benchmarks.drift"]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        root = Path(tmp)
        ref, cur = write_w5(root, W5_ROWS[size_name])
        ghaf, ghaf_rss = _run([*me, "ghaf", "w5", str(ref), str(cur)])
        base, base_rss = _run(
            [sys.executable, "-c", CHILD_PRELUDE + SCIPY_CHILD, str(ref), str(cur)]
        )
        full, _ = _run([*me, "ghaf", "w5-full-report", str(ref), str(cur), str(root / "ghaf.html")])
        base["flagged"] = sorted(base["flagged"])
        exact = ghaf["flagged"] == PLANTED
        print(f"# W5 flagged: ghaf {ghaf['flagged']} baseline {base['flagged']}", file=sys.stderr)
        figures += [
            Figure(
                "w5_ghaf_flags_exactly_planted",
                float(exact),
                "bool",
                "scipy KS+chi2+BH",
                float(base["flagged"] == PLANTED),
            ),
            Figure("w5_cpu_s", ghaf["cpu"], "s", "scipy KS+chi2+BH", base["cpu"], False),
            Figure("w5_peak_rss", ghaf_rss, "MiB", "scipy KS+chi2+BH", base_rss, False),
            Figure(
                "w5_cpu_with_domain_and_html_s",
                full["cpu"],
                "s",
                "scipy KS+chi2+BH",
                base["cpu"],
                False,
            ),
            Figure("w5_html_report_bytes", full["html"], "bytes", None, None, False),
        ]
        if size_name == "smoke":  # CI: no anchor venvs, just Ghaf against the baseline
            return figures + _scale(root, size_name, me)
        evidently = _anchor(
            "evidently", EVIDENTLY_CHILD, str(ref), str(cur), str(root / "evidently.html")
        )
        if evidently is not None:
            ev, ev_rss = evidently
            print(f"# W5 flagged: evidently {ev['flagged']}", file=sys.stderr)
            figures += [
                Figure(
                    "w5_cpu_s",
                    ghaf["cpu"],
                    "s",
                    "Evidently 0.7.23 DataDriftPreset",
                    ev["cpu"],
                    False,
                ),
                Figure("w5_peak_rss", ghaf_rss, "MiB", "Evidently 0.7.23", ev_rss, False),
                Figure(
                    "w5_columns_flagged_correctly",
                    float(exact),
                    "bool",
                    "Evidently 0.7.23",
                    float(ev["flagged"] == PLANTED),
                ),
                Figure(
                    "w5_html_report_bytes",
                    full["html"],
                    "bytes",
                    "Evidently 0.7.23",
                    ev["html"],
                    False,
                ),
            ]
        nannyml = _anchor("nannyml", NANNYML_CHILD, str(ref), str(cur))
        if nannyml is not None:
            nm, nm_rss = nannyml
            print(f"# W5 flagged: nannyml {nm['flagged']}", file=sys.stderr)
            figures += [
                Figure(
                    "w5_cpu_s", ghaf["cpu"], "s", "NannyML 0.13.1 (JS, 10 chunks)", nm["cpu"], False
                ),
                Figure("w5_peak_rss", ghaf_rss, "MiB", "NannyML 0.13.1", nm_rss, False),
                Figure(
                    "w5_columns_flagged_correctly",
                    float(exact),
                    "bool",
                    "NannyML 0.13.1",
                    float(nm["flagged"] == PLANTED),
                ),
            ]
        figures += _scale(root, size_name, me)
    return figures


def _scale(root: Path, size_name: str, me: list[str]) -> list[Figure]:
    rows, cols, ref_rows = SCALE[size_name]
    profile = profile_window_stream(ref_rows, cols, seed=7)
    path = root / "reference.profile"
    path.write_bytes(profile.to_bytes())
    del profile
    result, rss = _run([*me, "ghaf", "scale", str(path), str(rows), str(cols)])
    print(f"# scale {rows}x{cols}: {result}", file=sys.stderr)
    label = f"scale_{rows // 1000}k_x_{cols}"
    return [
        Figure(f"{label}_wall_s", result["wall"], "s", "limit 300 s", 300.0, False),
        Figure(f"{label}_cpu_s", result["cpu"], "s", None, None, False),
        Figure(f"{label}_peak_rss", rss, "MiB", "limit 4 GiB", 4096.0, False),
        Figure(f"{label}_columns_flagged", result["flagged"], "columns", "planted", 10.0),
    ]


if __name__ == "__main__":
    _ghaf_child(*sys.argv[2:]) if sys.argv[1] == "ghaf" else None
