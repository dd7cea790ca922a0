"""What a canary's evaluator reads, and the service's refusals, without a model server.

The prediction log is written as ``ghaf serve`` writes it (``PredictionBatch`` to
Parquet); the predicted class and score of each answer are checked against NumPy on
any output shape (hypothesis); labels join by request id, else by unit, the latest
report winning; files older than the window are not read, older logs still are. The
service refuses what would make a canary's evidence meaningless: an ambiguous
champion, a candidate the servers did not load, a second canary or an experiment on the
deployment; and a canary whose weights someone moved pauses.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.experiments.canary import (
    canary_decisions,
    evaluate_canary,
    get_canary,
    pause_canary,
    resume_canary,
    rollback_canary,
    start_canary,
)
from ghaf.experiments.canary_evidence import join_labels, read_answers, scrape_requests
from ghaf.experiments.service import create_experiment, start_experiment
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import create_deployment, get_deployment, update_deployment
from ghaf.serving.predlog import PredictionBatch
from ghaf.serving.scrape import ScrapeError
from tests.unit.serving.server_processes import second_person

PLAN = {"steps": [10, 100], "max_error_rate": None, "min_time_s": 0}


def _write(directory: Path, name: str, records: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.parquet"
    pq.write_table(PredictionBatch.from_records(records).to_arrow(), path)
    return path


def _record(i: int, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """A request as the server logs it: as many feature rows as output rows."""
    rows = len(next(iter(outputs.values())))
    return {"request_id": f"r{i}", "ts": 1000.0 + i, "model": "fraud", "version": "2",
            "latency_ms": 1.0, "features": np.ones((rows, 3)), "outputs": outputs}  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(1, 4),
    rows=st.integers(1, 3),
    values=st.data(),
    threshold=st.sampled_from([0.0, 0.5]),
)
def test_each_answer_s_class_and_score_are_its_first_output_s_first_row(
    tmp_path_factory: pytest.TempPathFactory, width: int, rows: int, values: Any, threshold: float
) -> None:
    directory = tmp_path_factory.getbasetemp() / "answers"
    floats = st.floats(-5, 5, allow_nan=False, width=32) | st.just(float("nan"))
    matrices = [values.draw(arrays(np.float64, (rows, width), elements=floats)) for _ in range(6)]
    records = [
        _record(i, {"scores": m, "other": np.zeros((rows, 1))}) for i, m in enumerate(matrices)
    ]
    _write(directory, "p-1", records)
    answers = read_answers(directory, "fraud", ["2"], 0.0, threshold)
    assert answers.column("request_id").to_pylist() == [f"r{i}" for i in range(6)]
    for m, top, score in zip(
        matrices, answers.column("top").to_pylist(), answers.column("score").to_pylist(),
        strict=True,
    ):  # fmt: skip
        first = m[0]
        assert score == pytest.approx(first[-1], nan_ok=True)
        if np.isnan(first).any():
            assert top is None  # no class: never counted right
        elif width == 1:
            assert top == (1 if first[0] >= threshold else 0)
        else:
            assert top == int(np.argmax(first))  # the first column holding the largest value


def test_older_files_are_not_read_and_older_logs_still_are(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    old = _write(directory, "p-1", [_record(1, {"p": np.array([[0.2, 0.8]])})])
    stale = time.time() - 7200
    os.utime(old, (stale, stale))
    outputs = pa.map_(pa.string(), pa.list_(pa.list_(pa.float64())))
    legacy = pa.table({"request_id": ["r9"], "ts": [time.time() * 1000], "model": ["fraud"],
                       "version": ["2"], "latency_ms": [3.0],
                       "outputs": pa.array([[("p", [[0.9, 0.1]])]], outputs)})  # fmt: skip
    pq.write_table(legacy, directory / "p-2.parquet")  # written before units and shadows
    (directory / "p-3.parquet").write_bytes(b"not parquet")
    since = (time.time() - 3600) * 1000
    answers = read_answers(directory, "fraud", ["2"], since, 0.5).to_pylist()
    assert [(a["request_id"], a["top"], a["unit"]) for a in answers] == [("r9", 0, None)]


def test_labels_join_by_request_id_else_unit_and_the_latest_wins() -> None:
    answers = pa.table({"request_id": ["a", "b", "c", "d"], "unit": [None, "u1", "u2", None]})
    t = [datetime(2026, 12, 7, h, tzinfo=UTC) for h in (1, 2, 3, 4)]
    outcomes = pa.table({
        "request_id": ["a", "a", None, "c", None],
        "unit": [None, None, "u1", None, "u2"],
        "value": [0.0, 1.0, 1.0, 0.0, 1.0],
        "ts": pa.array([t[0], t[1], t[0], t[2], t[3]], pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    labels = join_labels(answers, outcomes)
    assert labels[:3].tolist() == [1.0, 1.0, 0.0] and np.isnan(labels[3])


def _onnx(weight: float) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3], [weight] * 3)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


@pytest.fixture
def deployed(platform: Platform, tmp_path: Path) -> Platform:
    """``fraud:1..3`` approved; deployment ``fraud`` serves 1 and 2, ``fraud:1`` live."""
    admin, ben = platform.admin(), second_person(platform)
    for i in (1, 2, 3):
        save_model(_onnx(float(i)), tmp_path / f"m{i}")
        version = register_model(platform, admin, "fraud", tmp_path / f"m{i}")
        approve_model_version(platform, ben, version.ref)
    create_deployment(platform, admin, "fraud", {"fraud:1": 1.0, "fraud:2": 0.0})
    return platform


def test_the_service_refuses_what_would_blur_the_evidence(
    deployed: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, admin = deployed, deployed.admin()
    with pytest.raises(InvalidInputError, match="fraud:3 is not served"):
        start_canary(platform, admin, "c", "fraud", "fraud:3", PLAN)
    with pytest.raises(InvalidInputError, match="is the champion"):
        start_canary(platform, admin, "c", "fraud", "fraud:1", PLAN)
    with pytest.raises(NotFoundError, match="deployment 'nope' does not exist"):
        start_canary(platform, admin, "c", "nope", "fraud:2", PLAN)
    with pytest.raises(InvalidInputError, match=r"field steps"):
        start_canary(platform, admin, "c", "fraud", "fraud:2", {**PLAN, "steps": [50, 10]})
    plan = {**PLAN, "max_error_rate": 0.01, "metrics": ["http://127.0.0.1:9"]}
    # an operator's allow-list: a target outside it is refused before anything is fetched
    monkeypatch.setattr(platform.settings.server, "fetch_allow", ["http://127.0.0.1:8080"])
    with pytest.raises(PolicyViolationError, match=r"127\.0\.0\.1:9 is not in server\.fetch_allow"):
        start_canary(platform, admin, "c", "fraud", "fraud:2", plan)
    monkeypatch.setattr(platform.settings.server, "fetch_allow", [])
    with pytest.raises(InvalidInputError, match="metrics gave no counters"):
        start_canary(platform, admin, "c", "fraud", "fraud:2", plan)
    made = start_canary(platform, admin, "c", "fraud", "fraud:2", PLAN)
    assert (made.champion, made.weight, made.status) == ("fraud:1", 10.0, "running")
    assert get_deployment(platform, "fraud").models == {"fraud:1": 90.0, "fraud:2": 10.0}
    with pytest.raises(InvalidInputError, match="already holds deployment"):
        start_canary(platform, admin, "c2", "fraud", "fraud:2", PLAN)
    create_experiment(platform, admin, "ab", "fraud", {"fraud:1": 1.0, "fraud:2": 1.0})
    with pytest.raises(InvalidInputError, match="canary 'c' holds deployment"):
        start_experiment(platform, admin, "ab")

    # someone moves the weights by hand: the canary's evidence means nothing now: pause
    update_deployment(platform, admin, "fraud", models={"fraud:1": 50.0, "fraud:2": 50.0})
    moved = evaluate_canary(platform, admin, "c")
    assert moved.action == "pause"
    assert any("changed outside the canary" in reason for reason in moved.reasons)
    assert get_canary(platform, "c").status == "paused"
    with pytest.raises(InvalidInputError, match="only a running canary pauses"):
        pause_canary(platform, admin, "c", "again")
    resumed = resume_canary(platform, admin, "c")
    assert resumed.action == "resume" and "moved" not in str(resumed.evidence)
    rolled = rollback_canary(platform, admin, "c", "the weights were moved by hand")
    assert rolled.status == "rolled_back"
    assert get_deployment(platform, "fraud").models == {"fraud:1": 100.0, "fraud:2": 0.0}
    with pytest.raises(InvalidInputError, match="final"):
        evaluate_canary(platform, admin, "c")
    with pytest.raises(InvalidInputError, match="a reason is needed"):
        rollback_canary(platform, admin, "c", " ")
    assert [d.action for d in canary_decisions(platform, "c")] == [
        "start", "pause", "resume", "rollback"
    ]  # fmt: skip


def test_two_live_versions_need_the_champion_named(deployed: Platform) -> None:
    platform, admin = deployed, deployed.admin()
    update_deployment(platform, admin, "fraud", models={"fraud:1": 1.0, "fraud:2": 1.0})
    with pytest.raises(InvalidInputError, match="which one is the champion"):
        start_canary(platform, admin, "c", "fraud", "fraud:2", PLAN)
    made = start_canary(platform, admin, "c", "fraud", "fraud:2", PLAN, champion="fraud:1")
    assert made.champion == "fraud:1"


def _slow_answers(platform: Platform, version: str, latency_ms: float, n: int) -> None:
    """``n`` answers of ``fraud:version`` logged just now, each taking ``latency_ms``."""
    now = time.time() * 1000
    records = [
        {"request_id": f"{version}-{i}", "ts": now, "model": "fraud", "version": version,
         "latency_ms": latency_ms, "features": np.ones((1, 3)),
         "outputs": {"y": np.array([[1.0, 2.0, 3.0]])}}
        for i in range(n)
    ]  # fmt: skip
    _write(platform.settings.home / "predictions", f"p-{version}-{n}", records)


def test_a_latency_breach_rolls_back_and_opens_an_alert_when_the_evaluator_may(
    deployed: Platform,
) -> None:
    from ghaf.incidents import list_incidents
    from ghaf.testing.people import person

    platform, admin = deployed, deployed.admin()
    plan = {"steps": [10, 100], "max_error_rate": None, "max_p99_ms": 100, "min_samples": 10,
            "min_time_s": 0, "quality": None}  # fmt: skip
    start_canary(platform, admin, "slow", "fraud", "fraud:2", plan)
    _slow_answers(platform, "2", 450.0, 12)
    _slow_answers(platform, "1", 5.0, 50)
    # a release manager runs the evaluator: it rolls back; the alert needs alert.ingest
    rita = person(platform, "rita", ["release_manager"])
    decided = evaluate_canary(platform, rita, "slow")
    assert decided.action == "rollback" and decided.status == "rolled_back"
    latency = next(c for c in decided.checks if c["name"] == "p99_latency_ms")
    assert latency["status"] == "breach" and latency["value"] == pytest.approx(450.0)
    assert latency["samples"] == {"answers": 12, "over": 12} and latency["threshold"] == 100
    assert decided.evidence is not None
    alert = decided.evidence["alert"]
    assert alert["opened"] == [] and "alert.ingest" in alert["error"]
    assert get_deployment(platform, "fraud").models == {"fraud:1": 100.0, "fraud:2": 0.0}

    # the home's owner (every role) runs it: the same rollback opens an incident
    start_canary(platform, admin, "slow-2", "fraud", "fraud:2", plan)
    _slow_answers(platform, "2", 450.0, 15)
    again = evaluate_canary(platform, admin, "slow-2")
    assert again.action == "rollback" and again.evidence is not None
    opened = again.evidence["alert"]["opened"]
    incident = next(i for i in list_incidents(platform) if i.number in opened)
    assert "fraud:2" in incident.title and "p99_latency_ms breached" in incident.title


def test_a_replay_ramps_and_promotes_on_its_own_clock(deployed: Platform) -> None:
    """Logged traffic replayed on the canary's clock (``now``): what the demo does."""
    from datetime import timedelta

    from ghaf.registry import get_model_version
    from ghaf.serving.outcomes import Outcome, record_outcomes

    platform, admin = deployed, deployed.admin()
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    plan = {"steps": [50, 100], "max_error_rate": None, "max_p99_ms": 100, "min_samples": 20,
            "min_time_s": 30, "quality": {"min_labels": 20, "max_drop": 0.1}}  # fmt: skip
    start_canary(platform, admin, "replay", "fraud", "fraud:2", plan, now=t0)

    def replay(first_s: int, last_s: int, versions: tuple[str, ...]) -> None:
        for v in versions:  # one version's batch per file, as the logger writes them
            records = [
                {"request_id": f"q{s}-{v}", "ts": (t0.timestamp() + s) * 1000, "model": "fraud",
                 "version": v, "latency_ms": 2.0, "features": np.ones((1, 3)),
                 "outputs": {"y": np.array([[1.0, 2.0, 3.0]])}}
                for s in range(first_s, last_s)
            ]  # fmt: skip
            _write(platform.settings.home / "predictions", f"replay-{first_s}-{v}", records)
            labels = [Outcome(2.0, request_id=r["request_id"]) for r in records]  # class 2
            record_outcomes(platform, admin, "fraud", labels)

    replay(1, 41, ("1", "2"))
    early = evaluate_canary(platform, admin, "replay", now=t0 + timedelta(seconds=20))
    assert early.action == "hold", early.reasons
    assert any("20 s of 30 s" in r for r in early.reasons)
    step = next(c for c in early.checks if c["name"] == "step")
    assert step["value"] == 20  # what was logged by then, not the replay's later traffic
    moved = evaluate_canary(platform, admin, "replay", now=t0 + timedelta(seconds=41))
    assert moved.action == "advance" and moved.weight == 100.0, moved.reasons
    replay(42, 80, ("2",))
    done = evaluate_canary(platform, admin, "replay", now=t0 + timedelta(seconds=80))
    assert done.action == "promote" and done.status == "promoted", done.reasons
    assert get_model_version(platform, "fraud@champion").version == 2
    assert [d.window_end for d in canary_decisions(platform, "replay")][1:] == [
        t0 + timedelta(seconds=s) for s in (20, 41, 80)
    ]


def _metrics_server(drop_first: int) -> tuple[str, threading.Thread, list[int]]:
    """A one-thread HTTP server on 127.0.0.1 that closes its first ``drop_first``
    connections unanswered (a server too busy to answer), then serves a ghaf exposition."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    seen: list[int] = []
    body = b'ghaf_requests_total{model="m",version="2",code="200",worker="0"} 7.0\n'

    def serve() -> None:
        with listener:
            for _ in range(drop_first + 1):
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    return  # the client gave up first
                with conn:
                    seen.append(len(seen))
                    if len(seen) <= drop_first:
                        continue
                    conn.recv(65536)
                    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                    conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", thread, seen


def test_a_target_that_misses_one_scrape_is_asked_again() -> None:
    url, thread, seen = _metrics_server(drop_first=2)
    assert scrape_requests(url, timeout=5.0, attempts=3) == {"m:2:200": 7.0}
    thread.join(timeout=20)
    assert len(seen) == 3

    url, thread, seen = _metrics_server(drop_first=2)
    with pytest.raises(ScrapeError, match=r"did not answer .*2 tries"):
        scrape_requests(url, timeout=5.0, attempts=2)
    assert len(seen) == 2


def test_a_metrics_target_outside_server_fetch_allow_is_refused_by_name(tmp_path: Path) -> None:
    """``server.fetch_allow`` bounds what the server and the live loop fetch: a scheduled
    SLO (and a canary's plan) may name only the listed ``ghaf serve`` base URLs; an empty
    list allows any, an entry without a port any port of its host."""
    from ghaf.home import init_home
    from ghaf.serving.scrape import check_allowed
    from ghaf.settings import load_settings
    from ghaf.slo import SLO
    from ghaf.slo.schedule import list_slo_scrapes, schedule_slo
    from ghaf.slo.store import define_slo

    check_allowed("http://10.0.0.5:8080", [])
    check_allowed("http://10.0.0.5:8080", ["http://10.0.0.5"])
    check_allowed("http://10.0.0.5:8080", ["http://10.0.0.5:8080/"])
    allow = ["http://127.0.0.1:8080", "http://10.0.0.6"]
    for target in ("http://127.0.0.1:9090", "https://127.0.0.1:8080", "http://169.254.169.254"):
        with pytest.raises(PolicyViolationError, match=r"server\.fetch_allow"):
            check_allowed(target, allow)
    settings = load_settings(home=tmp_path / "home", server={"fetch_allow": allow})
    with init_home(settings) as platform:
        owner = platform.admin()
        define_slo(platform, owner, SLO("up", "fraud", "availability", 0.99))
        with pytest.raises(PolicyViolationError, match=r"169\.254\.169\.254"):
            schedule_slo(platform, owner, "up", ["http://169.254.169.254"])
        assert list_slo_scrapes(platform) == []  # nothing stored
        made = schedule_slo(platform, owner, "up", ["http://10.0.0.6:7000"])
        assert made.targets == ("http://10.0.0.6:7000",)
