"""The demo's runner: stages pass typed results along; one run out of order says what it
needs; the live loop sits between the data path and the governance checks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from ghaf.demo.runner import DemoEnv, Stage, run_stages
from ghaf.demo.stages import DATA_PATH, GOVERNANCE, LIVE_LOOP, STAGES
from ghaf.demo.state import DemoState
from ghaf.errors import InvalidInputError
from ghaf.settings import load_settings


def test_the_stage_list_is_the_data_path_then_the_loop_then_governance() -> None:
    assert [*DATA_PATH, *LIVE_LOOP, *GOVERNANCE] == STAGES
    names = [stage.name for stage in STAGES]
    assert len(set(names)) == len(names)
    assert names[-1] == "audit trail"
    assert [s.name for s in LIVE_LOOP] == ["replay drift period", "monitor served", "closed loop"]


def test_a_stage_run_out_of_order_names_what_it_needs(isolated_env: Path) -> None:
    serving = [stage for stage in STAGES if stage.name == "serving"]
    with pytest.raises(InvalidInputError, match="needs the champion"):
        run_stages(load_settings(home=isolated_env), serving, Console(file=io.StringIO()))


def test_each_stage_gets_the_state_the_last_one_returned(isolated_env: Path) -> None:
    seen: list[str | None] = []

    def first(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
        return DemoState(project="p"), "made p"

    def second(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
        seen.append(state.project)
        return state, f"saw {state.project}"

    out = io.StringIO()
    results, state = run_stages(
        load_settings(home=isolated_env),
        [Stage("first", first), Stage("second", second)],
        Console(file=out, width=200),
    )
    assert seen == ["p"] and state.project == "p"
    assert [r.summary for r in results] == ["made p", "saw p"]
    assert "saw p" in out.getvalue()
