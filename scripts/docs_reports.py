"""Render Ghaf's HTML reports from a small seeded scenario, for the documentation site.

People would rather look at a drift report, an evaluation report, a run comparison and a
model card than read about them, so the guides embed the real pages, rendered by the
code that renders them for users: drift (``ghaf monitor drift --html``), evaluation
(:func:`ghaf.evaluation.render_report`), run comparison (``ghaf runs compare --html``)
and the model card (``ghaf models card --html``).

Run as a script (``python scripts/docs_reports.py [OUT]``, default ``docs/reports``) or as
an MkDocs hook (``mkdocs.yml`` ``hooks:``): before each build the hook renders the pages
into ``docs/reports/`` (git-ignored) when one is missing or older than this script, so
``make docs``, the docs test and CI cannot build a site whose links point at nothing.
The scenario runs in a throw-away home, with no ``GHAF_*`` variable from outside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reports"
#: The pages rendered, by file name.
REPORTS = ("drift.html", "evaluation.html", "run-comparison.html", "model-card.html")
SEED = 24


def _ghaf(home: Path, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    """Run the ``ghaf`` CLI on ``home`` as a user would; refuse an unexpected exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env |= {"GHAF_HOME": str(home), "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        cwd=home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode not in ok:
        raise RuntimeError(f"ghaf {' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}")


def _scenario(home: Path, work: Path, out: Path) -> None:
    """A fraud-like table, two tracked runs, a registered model, a shifted month."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import ghaf
    from ghaf.evaluation import evaluate, render_report
    from ghaf.registry import register_model

    rng = np.random.default_rng(SEED)
    n = 2000

    def month(shift: float) -> dict[str, Any]:
        amount = rng.gamma(2.0, 40.0 * (1 + shift), n)
        hour = rng.integers(0, 24, n)
        channel = rng.choice(["web", "app", "pos"], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])
        return {"amount": amount, "hour": hour, "channel": channel}

    _ghaf(home, "init")
    reference, current = month(0.0), month(0.4)
    pq.write_table(pa.table(reference), work / "reference.parquet")
    pq.write_table(pa.table(current), work / "current.parquet")
    # Drift: exit 1 says a column drifted, which is what the page shows. Relative paths:
    # the report's title names them.
    _ghaf(
        home,
        "monitor",
        "drift",
        "--reference",
        "reference.parquet",
        "--current",
        "current.parquet",
        "--html",
        str(out / "drift.html"),
        ok=(0, 1),
    )

    x = pd.DataFrame(
        {
            "amount": reference["amount"],
            "hour": reference["hour"].astype(np.float64),
            "is_web": (reference["channel"] == "web").astype(np.float64),
        }
    )
    logit = 0.02 * (x["amount"] - 80) + 0.8 * x["is_web"] - 0.05 * np.abs(x["hour"] - 3)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=SEED)
    channel_test = np.where(x_test["is_web"] == 1, "web", "other")

    run_ids = []
    os.environ["GHAF_HOME"] = str(home)  # this process acts as the home's owner, as the CLI does
    with ghaf.Platform(ghaf.load_settings()) as platform:
        scores: dict[float, Any] = {}
        for c in (0.01, 1.0):
            with ghaf.start_run(
                f"logreg-C{c}", experiment="fraud", platform=platform, params={"C": c}
            ) as run:
                model = make_pipeline(StandardScaler(), LogisticRegression(C=c))
                for step, iterations in enumerate((1, 2, 4, 8, 16, 100)):
                    with warnings.catch_warnings():  # few iterations on purpose: a loss curve
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        model.set_params(logisticregression__max_iter=iterations)
                        model.fit(x_train, y_train)
                    loss = log_loss(y_train, model.predict_proba(x_train)[:, 1])
                    run.log_metric("train_loss", float(loss), step=step)
                score = model.predict_proba(x_test)[:, 1]
                evaluation = evaluate(y_test, score, slices={"channel": channel_test})
                run.log_metric("auc", float(evaluation.metrics["auc"]))
                scores[c] = score
                run_ids.append(run.run_id)
                source = run.log_model(model)  # the last (C=1.0) is the one registered
        evaluation = evaluate(
            y_test,
            scores[1.0],
            slices={"channel": channel_test},
            sensitive={"channel": channel_test},
            champion_score=scores[0.01],
        )
        (out / "evaluation.html").write_text(
            render_report(evaluation, "Evaluation report: fraud, C=1.0 against C=0.01"),
            encoding="utf-8",
        )
        version = register_model(
            platform,
            platform.admin(),
            "fraud",
            source,
            example=pa.Table.from_pandas(x_test.head(5), preserve_index=False),
            description="Scores card transactions for review by the risk team (docs scenario).",
        )
    _ghaf(home, "runs", "compare", *run_ids, "--html", str(out / "run-comparison.html"))
    _ghaf(home, "models", "card", version.ref, "--html", str(out / "model-card.html"))


def render(out: Path = OUT) -> list[Path]:
    """Render every page of :data:`REPORTS` into ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ghaf-docs-reports-") as scratch:
        work = Path(scratch)
        _scenario(work / "home", work, out)
    missing = [name for name in REPORTS if not (out / name).is_file()]
    if missing:
        raise RuntimeError(f"the scenario did not write {', '.join(missing)} to {out}")
    return [out / name for name in REPORTS]


def _stale(out: Path) -> bool:
    newest_input = Path(__file__).stat().st_mtime
    return any(
        not (out / name).is_file() or (out / name).stat().st_mtime < newest_input
        for name in REPORTS
    )


def on_pre_build(config: Any, **_: Any) -> None:
    """MkDocs hook: render the pages (in a separate process) when they are missing or stale;
    with ``DOCS_REPORTS_DIR`` set, take the pages already rendered there (the docs test
    renders once, checks the pages and builds the site with them)."""
    out = Path(config["docs_dir"]) / "reports"
    given = os.environ.get("DOCS_REPORTS_DIR")
    if given:
        out.mkdir(parents=True, exist_ok=True)
        for name in REPORTS:
            shutil.copyfile(Path(given) / name, out / name)
        return
    if not _stale(out):
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    done = subprocess.run(
        [sys.executable, __file__, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/docs_reports.py failed:\n{done.stderr[-3000:]}")


if __name__ == "__main__":
    written = render(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
