"""Search: hypothesis filters agree with a Python reference; injection attempts never run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.tracking import search_runs, start_run
from ghaf.tracking.service import create_run, log_batch

MODELS = ["lgbm", "xgb", "rf", "o'neil"]
TEAMS = ["risk", "ops"]


@dataclass
class FakeRun:
    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from ghaf.home import init_home
    from ghaf.settings import load_settings

    platform = init_home(load_settings(home=tmp_path_factory.mktemp("search") / "home"))
    runs: list[FakeRun] = []
    import random

    rng = random.Random(7)
    for i in range(40):
        run_id = create_run(platform, platform.admin(), "search", name=f"r{i}")
        metrics = {k: round(rng.uniform(0, 1), 2) for k in ("auc", "loss") if rng.random() < 0.8}
        params = {"model": rng.choice(MODELS)} if rng.random() < 0.8 else {}
        tags = {"team": rng.choice(TEAMS)} if rng.random() < 0.7 else {}
        log_batch(
            platform,
            platform.admin(),
            run_id,
            metrics=[(k, v, 0, 0.0) for k, v in metrics.items()],
            params=params,
            tags=tags,
        )
        runs.append(FakeRun(run_id, metrics, params, tags))
    yield platform, runs
    platform.close()


_NUM_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, Callable[[FakeRun], bool]]:
    kind = draw(st.sampled_from(["metric", "param", "tag", "in"]))
    if kind == "metric":
        key = draw(st.sampled_from(["auc", "loss"]))
        op = draw(st.sampled_from(sorted(_NUM_OPS)))
        value = draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
        return (
            f"metrics.{key} {op} {value}",
            lambda r: key in r.metrics and _NUM_OPS[op](r.metrics[key], value),
        )
    if kind == "in":
        values = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3))
        negate = draw(st.booleans())
        text = f"params.model {'not in' if negate else 'in'} ({', '.join(map(_quote, values))})"
        return text, lambda r: "model" in r.params and ((r.params["model"] in values) != negate)
    entity, key, pool = ("params", "model", MODELS) if kind == "param" else ("tags", "team", TEAMS)
    op = draw(st.sampled_from(["=", "!="]))
    value = draw(st.sampled_from(pool))

    def check(r: FakeRun) -> bool:
        values = r.params if entity == "params" else r.tags
        return key in values and ((values[key] == value) == (op == "="))

    return f"{entity}.{key} {op} {_quote(value)}", check


@st.composite
def filters(draw: st.DrawFn, depth: int = 2) -> tuple[str, Callable[[FakeRun], bool]]:
    if depth == 0 or draw(st.booleans()):
        return draw(comparisons())
    joiner = draw(st.sampled_from(["and", "or"]))
    parts = draw(st.lists(filters(depth - 1), min_size=2, max_size=3))
    text = f" {joiner} ".join(f"({p[0]})" for p in parts)
    checks = [p[1] for p in parts]
    if joiner == "and":
        return text, lambda r: all(c(r) for c in checks)
    return text, lambda r: any(c(r) for c in checks)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=filters())
def test_search_agrees_with_a_python_reference(populated: Any, case: Any) -> None:
    platform, runs = populated
    text, check = case
    page = search_runs(platform, text, experiments=["search"], max_results=1000)
    assert {r.run_id for r in page.runs} == {r.run_id for r in runs if check(r)}, text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=filters(),
    key=st.sampled_from(["auc", "loss"]),
    descending=st.booleans(),
)
def test_ordered_search_agrees_with_a_python_reference(
    populated: Any, case: Any, key: str, descending: bool
) -> None:
    """Ordered by a metric, whether or not the filter requires it (the query joins it inner
    then, outer otherwise): the same runs, in metric order, runs without it last."""
    platform, runs = populated
    text, check = case
    order = f"metrics.{key} {'desc' if descending else 'asc'}"
    page = search_runs(platform, text, experiments=["search"], order_by=[order], max_results=1000)
    assert {r.run_id for r in page.runs} == {r.run_id for r in runs if check(r)}, text
    values = [r.metrics.get(key) for r in page.runs]
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present)), (text, order)
    assert present == sorted(present, reverse=descending), (text, order)


def test_order_by_and_paging(populated: Any) -> None:
    platform, runs = populated
    with_auc = sorted((r for r in runs if "auc" in r.metrics), key=lambda r: -r.metrics["auc"])
    seen: list[float] = []
    token = None
    while True:
        page = search_runs(
            platform,
            "metrics.auc >= 0",
            order_by=["metrics.auc desc"],
            max_results=7,
            page_token=token,
        )
        seen += [r.metrics["auc"] for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
    assert seen == [r.metrics["auc"] for r in with_auc]
    assert search_runs(platform, "min(metrics.loss) >= 0").runs
    assert all(
        r.user == platform.admin().name
        for r in search_runs(platform, f"attributes.user = {_quote(platform.admin().name)}").runs
    )


INJECTIONS = [
    "params.model = 'x' OR 1=1",
    "params.model = 'x'; DROP TABLE runs; --",
    "metrics.auc > 0 UNION SELECT * FROM audit_records",
    "tags.team = 'risk' -- comment",
    "metrics.`auc` > 0.5)) OR ((1=1",
    "attributes.status = 'finished' or attributes.nosuch = 'x'",
    'params.model = "x" /* */',
    "metrics.auc > 0.5 and sleep(5)",
    "params.model = 'x' or",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_are_rejected(populated: Any, text: str) -> None:
    platform, _ = populated
    with pytest.raises(InvalidInputError, match="invalid filter"):
        search_runs(platform, text)


@pytest.mark.parametrize(
    "value", ["x' OR '1'='1", "'; DROP TABLE runs; --", "%' OR 1=1 --", "\\' OR 1=1"]
)
def test_quoted_payloads_are_literals(platform: Platform, value: str) -> None:
    with start_run(platform=platform, params={"model": value}) as run:
        pass
    found = search_runs(platform, f"params.model = {_quote(value)}").runs
    assert [r.run_id for r in found] == [run.run_id]
    assert search_runs(platform, "params.model = 'lgbm'").runs == []
    assert len(search_runs(platform).runs) == 1  # the runs table is still there


def test_bad_order_by_and_tokens(populated: Any) -> None:
    platform, _ = populated
    with pytest.raises(InvalidInputError):
        search_runs(platform, order_by=["metrics.auc sideways"])
    with pytest.raises(InvalidInputError):
        search_runs(platform, page_token="not-a-token")
    with pytest.raises(InvalidInputError):
        search_runs(platform, max_results=0)
    with pytest.raises(InvalidInputError, match="numbers"):
        search_runs(platform, "metrics.auc > 'high'")
    assert uuid  # keep the import for ids in failure messages
