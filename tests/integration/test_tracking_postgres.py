"""Tracking on PostgreSQL: runs, metric chunks, search (with injection literals) and history."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghaf.errors import InvalidInputError
from ghaf.home import init_home
from ghaf.settings import load_settings
from ghaf.tracking import get_metric_history, get_run, search_runs, start_run

pytestmark = pytest.mark.service


def test_tracking_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    platform = init_home(load_settings(home=tmp_path / "home", metadata_url=postgres_url))
    try:
        ids = []
        for i, model in enumerate(["lgbm", "xgb", "x' OR '1'='1"]):
            with start_run(
                platform=platform, params={"model": model}, tags={"team": "risk"}
            ) as run:
                run.log_batch([("loss", 1.0 / (s + 1), s) for s in range(100)])
                run.log_metric("auc", 0.8 + i / 20)
            ids.append(run.run_id)
        page = search_runs(
            platform,
            "metrics.auc > 0.82 and tags.team = 'risk' and params.model like 'x%'",
            order_by=["metrics.auc desc"],
        )
        assert [r.run_id for r in page.runs] == [ids[2], ids[1]]
        literal = search_runs(platform, "params.model = 'x'' OR ''1''=''1'")
        assert [r.run_id for r in literal.runs] == [ids[2]]
        assert len(get_metric_history(platform, ids[0], "loss")) == 100
        assert get_run(platform, ids[0]).metric_min["loss"] == pytest.approx(0.01)
        with pytest.raises(InvalidInputError):
            search_runs(platform, "params.model = 'x'; DROP TABLE runs")
    finally:
        platform.close()
