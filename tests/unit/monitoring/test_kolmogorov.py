"""The Pelz-Good KS tail and the lazy scipy.stats import on the large-window drift path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from ghaf.monitoring.kolmogorov import kstwo_sf
from ghaf.monitoring.stats import chi_square


def test_pelz_good_band_equals_scipy_kstwo() -> None:
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(1000):
        n = float(rng.integers(141, 2_000_000))
        d = float(np.sqrt(rng.uniform(0.0, 2.2) / n))  # n * d**2 in [0, 2.2)
        ours = kstwo_sf(d, n)
        if ours is None:
            continue
        checked += 1
        theirs = float(np.clip(sps.kstwo.sf(d, n), 0, 1))
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-300)
    assert checked > 300


@pytest.mark.parametrize(("d", "n"), [(0.3, 100.0), (0.0005, 50_000.0), (0.2, 50_000.0)])
def test_outside_the_band_defers_to_scipy(d: float, n: float) -> None:
    assert kstwo_sf(d, n) is None


def test_chi_square_pvalue_equals_scipy() -> None:
    ref = np.array([120, 95, 101, 88], dtype=np.int64)
    cur = np.array([100, 130, 90, 70], dtype=np.int64)
    statistic, p_value, dof = chi_square(ref, cur)
    expected = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert dof == expected.dof


def test_large_window_drift_does_not_import_scipy_stats() -> None:
    code = (
        "import sys, numpy as np, pyarrow as pa\n"
        "from ghaf.monitoring import compare_profiles, DriftOptions, build_profile\n"
        "rng = np.random.default_rng(0)\n"
        "def t(s): return pa.table({'x': rng.normal(s, 1, 20_000), "
        "'c': pa.array(rng.choice(['a', 'b'], 20_000))})\n"
        "r = compare_profiles(build_profile(t(0)), build_profile(t(0.1)), "
        "DriftOptions(domain_classifier=False))\n"
        "assert r.drifted_columns == ['x'], r.drifted_columns\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
