"""Canaries through a real ``ghaf serve --workers 2`` and real HTTP traffic on 127.0.0.1.

One server (module-wide) serves five versions of ``fraud``, each a small ONNX model
whose behaviour is planted: the champion (``fraud:1``) predicts the true class of every
row; ``fraud:2`` fails on rows whose third feature is 5 (an ONNX Gather out of range);
``fraud:3`` flips the class of rows whose second feature is 1 (5 % of the traffic);
``fraud:4`` scores NaN; ``fraud:5`` is as good as the champion and, like any fresh
version, not yet approved. Requests carry their route key, so which answer comes from
which version does not depend on chance. What people rely on:

- a canary failing 5xx, and separately one 5 points less accurate on labelled outcomes,
  at 10 % of the traffic, is rolled back at the first evaluation whose window shows it,
  the weights reach both workers within 5 s, and no request fails because of the switch;
- no traffic, NaN scores, and a missing source each pause the canary, never advance it;
- a healthy canary advances step by step on evidence, waits for the approval the
  release policy asks for, then is promoted (alias and traffic);
- a server that starts serves the record's weights and running experiment at once;
- the same through ``ghaf server``: the CLI logged in with a token, and the SDK, each
  person as their roles allow, the JSON the same as on the home.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.cli.output import to_jsonable
from ghaf.client.experiments import send_feedback
from ghaf.client.http import connect
from ghaf.errors import NotFoundError, PermissionDeniedError
from ghaf.experiments.canary import (
    canary_decisions,
    evaluate_canary,
    get_canary,
    list_canaries,
    rollback_canary,
    start_canary,
)
from ghaf.experiments.service import (
    create_experiment,
    list_experiments,
    start_experiment,
    stop_experiment,
)
from ghaf.home import init_home
from ghaf.incidents import list_incidents
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import (
    approve_model_version,
    get_model_version,
    register_model,
    set_alias,
)
from ghaf.registry.release import set_release_policy
from ghaf.serving.deployments import create_deployment, get_deployment
from ghaf.serving.traffic import Assignment, TrafficSplit
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess, bearer, second_person

pytestmark = pytest.mark.slow

POLICY = """\
version: 1
protected_aliases: [champion]
protect_deployments: false   # a fresh version may be canaried; the champion alias is protected
requires: {approvals: 1, signed: true, gates: none, not_archived: true}
"""
WEIGHTS_S = 5.0
"""How soon every worker must serve a new revision."""


def _linear(w: float, flip: float = 0.0) -> bytes:
    """scores = x @ [[-w, w], [flip, -flip], [0, 0]]: class 1 when x0 > 0 (unless flipped)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["scores"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("W", TensorProto.FLOAT, [3, 2], [-w, w, flip, -flip, 0.0, 0.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def _failing() -> bytes:
    """The champion's scores plus table[x2]: a row whose x2 is 2 or more fails at run time."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["linear"]),
        helper.make_node("Slice", ["x", "start", "end", "axis"], ["column"]),
        helper.make_node("Cast", ["column"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["picked"], axis=0),
        helper.make_node("Reshape", ["picked", "shape"], ["offset"]),
        helper.make_node("Add", ["linear", "offset"], ["scores"]),
    ]
    tensors = [
        helper.make_tensor("W", TensorProto.FLOAT, [3, 2], [-1, 1, 0, 0, 0, 0]),
        helper.make_tensor("start", TensorProto.INT64, [1], [2]),
        helper.make_tensor("end", TensorProto.INT64, [1], [3]),
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("table", TensorProto.FLOAT, [2], [0.0, 0.0]),
        helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "failing",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])],
        tensors,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


@dataclass
class World:
    platform: Platform
    server: ServerProcess
    token: str
    log_dir: Path
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(20))
    sent: int = 0
    at_start: dict[str, Any] = field(default_factory=dict)

    def plan(self, **extra: Any) -> dict[str, Any]:
        """A plan with short windows: tests wait on conditions, not on minutes."""
        plan = {
            "steps": [10, 100], "min_samples": 10_000, "min_time_s": 1.0, "interval_s": 1.0,
            "metrics": [self.server.url], "max_error_rate": 0.05, "max_p99_ms": 2000,
            "quality": {"min_labels": 150, "max_drop": 0.01, "max_psi": None},
        }  # fmt: skip
        plan.update(extra)
        return plan


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("canary")
    with init_home(load_settings(home=root / "home")) as platform:
        admin = platform.admin()
        set_release_policy(platform, admin, platform.default_project, POLICY)
        ben = second_person(platform)
        example = np.zeros((2, 3), np.float32)
        models = [_linear(1.0), _failing(), _linear(1.0, flip=1000.0), _linear(float("nan")),
                  _linear(0.99)]  # fmt: skip
        for i, model in enumerate(models, 1):
            save_model(model, root / f"m{i}")
            version = register_model(platform, admin, "fraud", root / f"m{i}", example=example)
            if i < 5:
                approve_model_version(platform, ben, version.ref)
        set_alias(platform, admin, "fraud", "champion", 1)
        token = mint(platform, "svc-app", ["model_server"], kind="service")
        # the record before any server: the champion's weight, and a running experiment
        create_deployment(platform, admin, "fraud", {f"fraud:{i}": 100.0 * (i == 1) for i in
                                                     range(1, 6)})  # fmt: skip
        ab = create_experiment(platform, admin, "ab", "fraud", {"fraud:1": 1.0, "fraud:3": 1.0})
        start_experiment(platform, admin, "ab")
        log_dir = platform.settings.home / "predictions"
        server = ServerProcess(
            platform.settings.home,
            ("serve", *[f"fraud:{i}" for i in range(1, 6)], "--workers", "2",
             "--metrics-public", "--log-dir", str(log_dir)),
            "/v2/health/ready",
            root / "serve.log",
        ).start(timeout=300)  # fmt: skip
        try:
            world = World(platform, server, token, log_dir)
            world.at_start = _first_answers(world, ab.salt)
            stopped = stop_experiment(platform, admin, "ab")
            assert stopped.status == "stopped"
            _every_worker_at(world, get_deployment(platform, "fraud").revision, timeout=120)
            yield world
        finally:
            output = server.stop()
        assert "Traceback" not in output


def _first_answers(world: World, salt: str) -> dict[str, Any]:
    """What the server answered first: versions and revisions without a unit, and each
    unit's version against the one its assignment names (fresh connections: both workers)."""
    assignment = Assignment("ab", salt, {"1": 1.0, "3": 1.0}, control="1")
    found: dict[str, Any] = {"revision": get_deployment(world.platform, "fraud").revision,
                             "versions": set(), "revisions": set(), "units": []}  # fmt: skip
    for i in range(40):
        unit = {"x-ghaf-unit": f"customer-{i}"} if i % 2 else {}
        with httpx.Client(base_url=world.server.url, headers=bearer(world.token)) as fresh:
            reply = fresh.post("/v2/models/fraud/infer", json=_body([1.0, 0.0, 0.0], f"s{i}"),
                               headers=unit)  # fmt: skip
        version = reply.json().get("model_version")
        found["revisions"].add(int(reply.headers["x-ghaf-revision"]))
        if unit:
            expected = assignment.assign(unit["x-ghaf-unit"])[1]
            found["units"].append((unit["x-ghaf-unit"], version, expected))
        else:
            found["versions"].add(version)
    return found


def _body(x: list[float], request_id: str) -> dict[str, Any]:
    return {"id": request_id, "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                                          "data": x}]}  # fmt: skip


@dataclass
class Answer:
    request_id: str
    status: int
    version: str | None
    label: int
    poison: bool
    flip: bool
    revision: int


def _traffic(
    world: World, n: int, *, poison_every: int = 0, flip_every: int = 0, threads: int = 4
) -> list[Answer]:
    """``n`` one-row requests over keep-alive connections; every ``poison_every``-th row
    makes ``fraud:2`` fail, every ``flip_every``-th makes ``fraud:3`` wrong."""
    start = world.sent
    world.sent += n
    xs = world.rng.choice([-1.0, 1.0], n) * world.rng.uniform(0.1, 2.0, n)
    answers: list[Answer | None] = [None] * n

    def run(k: int) -> None:
        with httpx.Client(base_url=world.server.url, headers=bearer(world.token), timeout=30) as c:
            for j in range(k, n, threads):
                i = start + j
                poison = bool(poison_every and j % poison_every == 0)
                flip = bool(flip_every and j % flip_every == 0)
                x0 = abs(float(xs[j])) if flip else float(xs[j])  # class 1: the flip errs
                x = [x0, 1.0 if flip else 0.0, 5.0 if poison else 0.0]
                rid = f"r{i}"
                reply = c.post(
                    "/v2/models/fraud/infer", json=_body(x, rid), headers={"x-ghaf-route-key": rid}
                )
                version = reply.json().get("model_version") if reply.status_code == 200 else None
                revision = int(reply.headers.get("x-ghaf-revision", 0))
                answers[j] = Answer(
                    rid, reply.status_code, version, int(x0 > 0), poison, flip, revision
                )

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert all(a is not None for a in answers), "a traffic thread did not finish"
    return [a for a in answers if a is not None]


def _label(world: World, answers: list[Answer]) -> int:
    """Report each answered request's true class as its outcome (POST /v2/feedback)."""
    outcomes = [
        {"request_id": a.request_id, "outcome": a.label} for a in answers if a.status == 200
    ]
    stored = 0
    for i in range(0, len(outcomes), 1000):
        stored += send_feedback(
            world.server.url, "fraud", outcomes[i : i + 1000], token=world.token
        )
    return stored


def _every_worker_at(world: World, revision: int, timeout: float = WEIGHTS_S) -> float:
    """Seconds until both workers answered at ``revision`` or later (fresh connections:
    the kernel spreads them over the workers)."""
    started = time.monotonic()
    seen: dict[str, int] = {}
    while len([w for w, r in seen.items() if r >= revision]) < 2:
        took = time.monotonic() - started
        assert took < timeout, f"workers {seen} not at revision {revision} after {took:.1f} s"
        with httpx.Client(base_url=world.server.url, headers=bearer(world.token)) as fresh:
            reply = fresh.post("/v2/models/fraud/infer", json=_body([1.0, 0.0, 0.0], "probe"))
        assert reply.status_code == 200, reply.text
        seen[reply.headers["x-ghaf-worker"]] = int(reply.headers["x-ghaf-revision"])
    return time.monotonic() - started


def _champion_key(canary_weight: float) -> str:
    """A route key the champion answers at ``canary_weight`` % (and below) for the
    canary: ``TrafficSplit`` hashes it, so it never meets the candidate's batcher."""
    split = TrafficSplit({"1": 100.0 - canary_weight, "2": canary_weight})
    return next(k for k in (f"steady-{i}" for i in range(1000)) if split.choose(k) == "1")


class _Steady(threading.Thread):
    """Clean requests over one keep-alive connection until stopped, routed to the
    champion: a failure among them is the switch's doing, nothing else's."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world = world
        self.key = _champion_key(10.0)
        self.done = threading.Event()
        self.ok = 0
        self.failed: list[str] = []

    def run(self) -> None:
        headers = bearer(self.world.token)
        with httpx.Client(base_url=self.world.server.url, headers=headers, timeout=30) as c:
            while not self.done.is_set():
                try:
                    reply = c.post(
                        "/v2/models/fraud/infer",
                        json=_body([0.5, 0.0, 0.0], "steady"),
                        headers={"x-ghaf-route-key": self.key},
                    )
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                    continue
                if reply.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"{reply.status_code} {reply.text}")


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _check(decision: Any, name: str) -> dict[str, Any]:
    return next(c for c in decision.checks if c["name"] == name)


def test_a_starting_server_serves_what_the_record_says(world: World) -> None:
    """From its first request, with no change to wait for: the record's weights (the
    champion's 100, not equal shares) and the running experiment's assignment."""
    first = world.at_start
    assert first["versions"] == {"1"} and first["revisions"] == {first["revision"]}
    assert len(first["units"]) == 20
    for unit, version, expected in first["units"]:
        assert version == expected, unit
    assert {v for _, v, _ in first["units"]} == {"1", "3"}


def test_an_error_rate_breach_rolls_back_within_a_window(world: World) -> None:
    platform, admin = world.platform, world.platform.admin()
    made = start_canary(platform, admin, "c-errors", "fraud", "fraud:2", world.plan())
    assert made.champion == "fraud:1" and made.weight == 10.0
    took = _every_worker_at(world, get_deployment(platform, "fraud").revision)
    print(f"the canary's 10 % reached both workers in {took:.2f} s")
    steady = _Steady(world)
    steady.start()
    warm = _traffic(world, 100)  # the candidate answers clean rows: the window has traffic
    assert all(a.status == 200 for a in warm)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "ghaf", "--home", str(platform.settings.home), "experiments",
         "canary", "watch", "c-errors", "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _until(lambda: len(canary_decisions(platform, "c-errors")) >= 2, 60, "a first window")
        # one at a time: a planted row fails its whole batch, and must share it with no one
        answers = _traffic(world, 300, poison_every=3, threads=1)
        sent = time.monotonic()
        _until(lambda: get_canary(platform, "c-errors").status == "rolled_back", 30, "a rollback")
        rolled_back = time.monotonic()
        took = _every_worker_at(world, get_deployment(platform, "fraud").revision)
        print(f"rolled back {rolled_back - sent:.2f} s after the planted traffic; "
              f"both workers at the champion {took:.2f} s later")  # fmt: skip
        assert took < WEIGHTS_S
        after = _traffic(world, 60, poison_every=2)
        out, err = watcher.communicate(timeout=60)
    finally:
        steady.done.set()
        steady.join(30)
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
    assert watcher.returncode == 0, err
    # the switch failed no request: the steady ones (on the champion) all answered, and
    # every failure is a planted row the candidate scored
    assert steady.failed == [] and steady.ok > 0
    failed = [a for a in answers if a.status != 200]
    assert failed and all(a.poison and a.status == 500 for a in failed)
    assert all(a.status == 200 and a.version == "1" for a in after)

    watched = json.loads(out)
    assert watched["canary"]["status"] == "rolled_back"
    decisions = canary_decisions(platform, "c-errors")
    assert [d.action for d in decisions][-1] == "rollback"
    rollback = decisions[-1]
    breach = _check(rollback, "error_rate")
    assert breach["status"] == "breach" and breach["threshold"] == 0.05
    assert breach["samples"]["errors"] >= 3 and breach["bound"] > 0.05
    assert rollback.weight == 0.0 and rollback.evidence is not None
    assert rollback.evidence["window"]["seconds"] > 0
    # within one window: no earlier evaluation saw the evidence and let it pass
    for earlier in decisions[1:-1]:
        assert earlier.action == "hold" and _check(earlier, "error_rate")["status"] != "breach"
    # one interval (1 s) and an evaluation, with room for a loaded two-core machine
    assert rolled_back - sent < 1.0 + 5.0
    alert = rollback.evidence["alert"]
    assert alert["opened"], alert
    incidents = [i for i in list_incidents(platform) if i.number in alert["opened"]]
    assert incidents and "fraud:2" in incidents[0].title


def test_a_five_point_accuracy_drop_rolls_back_within_a_window(world: World) -> None:
    platform, admin = world.platform, world.platform.admin()
    start_canary(platform, admin, "c-accuracy", "fraud", "fraud:3", world.plan())
    _every_worker_at(world, get_deployment(platform, "fraud").revision)
    answers = _traffic(world, 2000, flip_every=20)
    assert all(a.status == 200 for a in answers)
    by_version = {v: sum(1 for a in answers if a.version == v) for v in ("1", "3")}
    assert 150 <= by_version["3"] <= 400, by_version  # about 10 %
    time.sleep(1.0)  # the prediction log's flush interval (0.5 s)
    started = time.monotonic()
    pending = evaluate_canary(platform, admin, "c-accuracy")
    print(f"an evaluation took {time.monotonic() - started:.2f} s")
    assert pending.action == "hold" and "labels pending" in _check(pending, "quality")["detail"]

    assert _label(world, answers) == len(answers)
    decided = evaluate_canary(platform, admin, "c-accuracy")  # the first window with labels
    assert decided.action == "rollback", decided.reasons
    quality = _check(decided, "quality")
    assert quality["status"] == "breach" and quality["source"] == "labels"
    canary = [a for a in answers if a.version == "3"]
    accuracy = 1 - sum(a.flip for a in canary) / len(canary)  # the champion's is 1
    assert quality["value"] == pytest.approx(accuracy) and 0.93 <= accuracy <= 0.97
    assert quality["samples"]["canary_labels"] == by_version["3"]
    took = _every_worker_at(world, get_deployment(platform, "fraud").revision)
    assert took < WEIGHTS_S
    assert all(a.status == 200 and a.version == "1" for a in _traffic(world, 40, flip_every=2))


def test_no_traffic_nan_and_a_missing_source_pause(world: World, tmp_path: Path) -> None:
    platform, admin = world.platform, world.platform.admin()

    start_canary(platform, admin, "c-quiet", "fraud", "fraud:5", world.plan())
    quiet = evaluate_canary(platform, admin, "c-quiet")
    assert quiet.action == "pause" and quiet.status == "paused"
    assert _check(quiet, "traffic")["status"] == "missing"
    assert get_deployment(platform, "fraud").models["fraud:5"] == 10.0  # held, not moved on
    rollback_canary(platform, admin, "c-quiet", "test: next case")

    plan = world.plan(quality={"min_labels": 150, "max_psi": 0.25})
    start_canary(platform, admin, "c-nan", "fraud", "fraud:4", plan)
    _every_worker_at(world, get_deployment(platform, "fraud").revision)
    assert all(a.status == 200 for a in _traffic(world, 500))
    time.sleep(1.0)
    nan = evaluate_canary(platform, admin, "c-nan")
    assert nan.action == "pause", nan.reasons
    assert _check(nan, "quality")["status"] == "nan" and "NaN" in nan.reasons[0]
    rollback_canary(platform, admin, "c-nan", "test: next case")

    start_canary(platform, admin, "c-missing", "fraud", "fraud:5", world.plan())
    _every_worker_at(world, get_deployment(platform, "fraud").revision)
    assert all(a.status == 200 for a in _traffic(world, 300))
    elsewhere = tmp_path / "not-where-serve-logs"
    missing = evaluate_canary(platform, admin, "c-missing", log_dir=elsewhere)
    assert missing.action == "pause"
    assert _check(missing, "p99_latency_ms")["status"] == "missing"
    assert "no prediction log" in missing.reasons[0]
    assert _check(missing, "error_rate")["status"] != "missing"  # the counters were there
    rollback_canary(platform, admin, "c-missing", "test: done")
    assert all(d.action != "advance" for n in ("c-quiet", "c-nan", "c-missing")
               for d in canary_decisions(platform, n))  # fmt: skip


def test_a_healthy_canary_advances_awaits_approval_and_is_promoted(world: World) -> None:
    platform, admin = world.platform, world.platform.admin()
    plan = world.plan(
        steps=[10, 50, 100], min_samples=60,
        quality={"min_labels": 60, "max_drop": 0.05, "max_psi": 0.25},
    )  # fmt: skip
    start_canary(platform, admin, "c-good", "fraud", "fraud:5", plan)
    for weight, n in ((10.0, 900), (50.0, 200), (100.0, 100)):
        _every_worker_at(world, get_deployment(platform, "fraud").revision)
        answers = _traffic(world, n)
        assert all(a.status == 200 for a in answers)
        _label(world, answers)
        time.sleep(1.0)  # the step's minimum time, and the log's flush
        decided = evaluate_canary(platform, admin, "c-good")
        if weight < 100:
            assert decided.action == "advance", decided.reasons
            assert decided.weight > weight and decided.evidence is not None
            assert decided.evidence["next_weight"] == decided.weight
        else:
            assert decided.action == "await_approval", decided.reasons
            assert "approved (0 of 1" in decided.reasons[0]
    assert get_canary(platform, "c-good").status == "awaiting_approval"
    assert get_model_version(platform, "fraud@champion").version == 1

    approve_model_version(platform, second_person(platform), "fraud:5")
    more = _traffic(world, 80)
    _label(world, more)
    time.sleep(0.6)
    promoted = evaluate_canary(platform, admin, "c-good")
    assert promoted.action == "promote" and promoted.status == "promoted", promoted.reasons
    assert _check(promoted, "quality")["source"] == "labels"
    assert get_model_version(platform, "fraud@champion").version == 5
    record = get_deployment(platform, "fraud")
    assert record.models["fraud:5"] == 100.0 and record.models["fraud:1"] == 0.0
    assert _every_worker_at(world, record.revision) < WEIGHTS_S
    assert {a.version for a in _traffic(world, 40)} == {"5"}
    actions = [d.action for d in canary_decisions(platform, "c-good")]
    assert actions == ["start", "advance", "advance", "await_approval", "promote"]


def test_the_doors_over_ghaf_server(world: World, tmp_path: Path) -> None:
    """The CLI logged in to ``ghaf server`` and the SDK: start, step (the server reads
    the evidence), status, pause, resume, rollback; each person as their roles allow;
    the JSON is the home's."""
    platform = world.platform
    tokens = {n: mint(platform, n, [r]) for n, r in
              (("remy", "release_manager"), ("vera", "viewer"), ("sam", "sre"))}  # fmt: skip
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start(timeout=300)
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config"),
              "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # fmt: skip
    remote = {**config, "GHAF_URL": server.url}
    canary = ("experiments", "canary")
    try:
        logged = ghaf("login", "--server", server.url, "--token", tokens["remy"], env=config)
        assert logged.returncode == 0, logged.stderr
        start = (*canary, "start", "c-remote", "--deployment", "fraud", "--candidate", "fraud:1")
        bad = ghaf(*start, "--steps", "50,10", env=remote)
        assert bad.returncode == 3 and "field steps" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2
        assert "c-remote" not in {c.name for c in list_canaries(platform)}
        plan = tmp_path / "plan.yaml"
        plan.write_text("max_error_rate: 0.05\nmin_samples: 10000\nquality: {max_psi: null}\n")
        made = ghaf(*start, "--plan", str(plan), "--steps", "10,100", "--metrics",
                    world.server.url, "-o", "json", env=remote)  # fmt: skip
        assert made.returncode == 0, made.stderr
        record = json.loads(made.stdout)
        assert (record["champion"], record["weight"], record["created_by"]) == (
            "fraud:5",
            10.0,
            "remy",
        )
        # the servers follow the record within a poll: send once both serve the canary's 10%
        _every_worker_at(world, get_deployment(platform, "fraud").revision)
        assert all(a.status == 200 for a in _traffic(world, 200))
        time.sleep(0.7)
        stepped = ghaf(*canary, "step", "c-remote", "-o", "json", env=remote)
        assert stepped.returncode == 0, stepped.stderr
        decided = json.loads(stepped.stdout)
        assert decided["action"] == "hold", decided["reasons"]  # 10,000 samples
        assert decided["actor"] == "remy"
        checks = {c["name"]: c for c in decided["evidence"]["checks"]}
        assert checks["traffic"]["status"] == "pass" and checks["step"]["status"] == "inconclusive"
        assert checks["error_rate"]["samples"]["requests"] > 0  # read by the server

        with connect(server.url, token=tokens["vera"]) as vera, \
                connect(server.url, token=tokens["sam"]) as sam:  # fmt: skip
            status = vera.canary_status("c-remote")
            assert status["canary"]["status"] == "running"
            assert status["decisions"][-1]["action"] == "hold"
            assert [c["name"] for c in vera.canaries()].count("c-remote") == 1
            with pytest.raises(PermissionDeniedError):
                vera.pause_canary("c-remote", "a viewer may not")
            with pytest.raises(PermissionDeniedError):
                sam.evaluate_canary("c-remote")
            with pytest.raises(NotFoundError):
                sam.canary_status("no-such-canary")
            paused = sam.pause_canary("c-remote", "INC-9: looking at it")
            assert paused["status"] == "paused" and paused["actor"] == "sam"
        with connect(server.url, token=tokens["remy"]) as remy:
            assert remy.resume_canary("c-remote")["status"] == "running"
        # the same JSON on the home (as remy, by token) and through the server
        home = ("--home", str(platform.settings.home), "--token", tokens["remy"])
        here = ghaf(*home, *canary, "status", "c-remote", "--output", "json")
        there = ghaf(*canary, "status", "c-remote", "--output", "json", env=remote)
        assert here.returncode == there.returncode == 0, (here.stderr, there.stderr)
        assert json.loads(here.stdout) == json.loads(there.stdout)
        assert json.loads(there.stdout)["decisions"][-1]["action"] == "resume"
        listed = ghaf("experiments", "list", "--output", "json", env=remote)
        assert listed.returncode == 0 and json.loads(listed.stdout) == {
            "experiments": to_jsonable(list_experiments(platform))
        }

        rolled = ghaf(*canary, "rollback", "c-remote", "--reason", "done looking", env=remote)
        assert rolled.returncode == 0 and "rolled_back" in rolled.stdout, rolled.stderr
        table = ghaf(*canary, "list", env=remote)
        assert "c-remote" in table.stdout and "rolled_back" in table.stdout
        again = ghaf(*canary, "step", "c-remote", env=remote)
        assert again.returncode == 3 and "final" in again.stderr
    finally:
        output = server.stop()
    assert "Traceback" not in output
    assert get_deployment(platform, "fraud").models["fraud:1"] == 0.0
    assert [d.actor for d in canary_decisions(platform, "c-remote")] == [
        "remy", "remy", "sam", "remy", "remy"
    ]  # fmt: skip
