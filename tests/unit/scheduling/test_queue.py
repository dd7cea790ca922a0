"""The job queue in-process: fair share by weight over 100 jobs, priorities, cancel,
concurrent-jobs quotas, over-quota refusal at submission, and a killed dispatcher's
claims returning to the queue."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ghaf.errors import AlreadyExistsError, PermissionDeniedError, PolicyViolationError
from ghaf.home import init_home
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.scheduling import Dispatcher, Job, list_jobs, project_usage, set_quota, submit_job
from ghaf.scheduling.dispatcher import find_orphans
from ghaf.scheduling.fairshare import FairShare, dispatch_order
from ghaf.scheduling.queue import cancel_job, claim_next, finish_job, get_job, set_priority
from ghaf.scheduling.quotas import check_quota, clear_quota, get_quota
from ghaf.settings import load_settings
from ghaf.testing.people import mint

PIPELINE = "ghaf.pipelines.examples:numbers"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("queue") / "home"
    with init_home(load_settings(home=root, pipelines=[PIPELINE])) as platform:
        yield platform


def _drain(platform: Platform) -> None:
    """Cancel whatever an earlier test left queued, so each test starts empty."""
    admin = platform.admin()
    for job in list_jobs(platform, statuses=("queued",)):
        cancel_job(platform, admin, job.id, project=job.project)


def _submit(platform: Platform, project: str, n: int, **kw: Any) -> list[Job]:
    admin = platform.admin()
    return [
        submit_job(platform, admin, "pipeline", PIPELINE, project=project, **kw) for _ in range(n)
    ]


def test_two_projects_share_the_slots_by_their_weights(home: Platform) -> None:
    _drain(home)
    admin = home.admin()
    set_quota(home, admin, "alpha", weight=3)
    set_quota(home, admin, "beta", weight=1)
    _submit(home, "alpha", 60)
    _submit(home, "beta", 40)
    queued = list_jobs(home, projects=["alpha", "beta"], statuses=("queued",))
    assert [j.position for j in queued] == list(range(1, 101))

    def work(job: Job) -> dict[str, object]:
        return {"ran": job.id}

    with Dispatcher(home, admin, work, slots=4) as dispatcher:
        dispatcher.run(until_idle=True)
    order = [j.project for j in dispatcher.claimed]
    assert len(order) == 100 and Counter(order) == {"alpha": 60, "beta": 40}
    # While both were backlogged (up to alpha's last dispatch), dispatches follow 3:1.
    both = order[: order.index("alpha", len(order) - order[::-1].index("alpha") - 1) + 1]
    share = both.count("alpha") / len(both)
    assert abs(share - 0.75) <= 0.075, (share, len(both))
    # The positions ghaf jobs list showed were the order the dispatcher took.
    assert [j.project for j in queued] == order
    done = list_jobs(home, projects=["alpha", "beta"], statuses=("succeeded",), limit=500)
    assert len(done) == 100 and all(j.result == {"ran": j.id} for j in done)


def test_priority_and_cancel_take_effect(home: Platform) -> None:
    _drain(home)
    admin = home.admin()
    first, second, third = _submit(home, "gamma", 3)
    assert [j.id for j in list_jobs(home, projects=["gamma"], statuses=("queued",))] == [
        first.id, second.id, third.id,
    ]  # fmt: skip
    moved = set_priority(home, admin, third.id, 10, project="gamma")
    assert moved.priority == 10 and get_job(home, third.id[:8]).position == 1
    cancel_job(home, admin, second.id, project="gamma")
    assert get_job(home, second.id).status == "cancelled"
    owner = "test-host:1:1"
    claimed = [claim_next(home, admin, owner), claim_next(home, admin, owner)]
    assert [j.id for j in claimed if j] == [third.id, first.id]
    assert claim_next(home, admin, owner) is None  # the cancelled one never runs
    with pytest.raises(AlreadyExistsError, match="only a queued job"):
        cancel_job(home, admin, first.id, project="gamma")
    with pytest.raises(AlreadyExistsError):
        set_priority(home, admin, first.id, 5, project="gamma")
    for job in claimed:
        assert job is not None
        finish_job(home, admin, job.id, owner, status="succeeded")


def test_a_viewer_may_not_queue_or_cancel(home: Platform) -> None:
    _drain(home)
    viewer = mint(home, "vic", ["viewer"], project="delta", bind_on="delta")
    from ghaf.access.tokens import verify_token

    actor = verify_token(home, viewer)
    with pytest.raises(PermissionDeniedError, match=r"may not job\.submit"):
        submit_job(home, actor, "pipeline", PIPELINE, project="delta")
    [job] = _submit(home, "delta", 1)
    with pytest.raises(PermissionDeniedError):
        cancel_job(home, actor, job.id, project="delta")
    with pytest.raises(PermissionDeniedError):  # quotas are set home-wide only
        set_quota(home, actor, "delta", gpu_hours=100)


def test_concurrent_jobs_quota_makes_jobs_wait(home: Platform) -> None:
    _drain(home)
    admin = home.admin()
    set_quota(home, admin, "eps", max_concurrent=1)
    a, b = _submit(home, "eps", 2)
    owner = "test-host:2:1"
    assert (claimed := claim_next(home, admin, owner)) is not None and claimed.id == a.id
    assert claim_next(home, admin, owner) is None  # b waits: eps runs one at a time
    assert get_job(home, b.id).status == "queued"
    finish_job(home, admin, a.id, owner, status="succeeded")
    assert (claimed := claim_next(home, admin, owner)) is not None and claimed.id == b.id
    finish_job(home, admin, b.id, owner, status="failed", error="boom")
    clear_quota(home, admin, "eps")
    assert get_quota(home, "eps").max_concurrent is None


def test_a_project_over_its_gpu_hours_quota_is_refused_at_submission(home: Platform) -> None:
    _drain(home)
    admin = home.admin()
    set_quota(home, admin, "vision", gpu_hours=1.0, period="30d")
    start = utcnow() - timedelta(hours=2)
    [job] = _submit(home, "vision", 1, gpus=2, at=start)
    owner = "test-host:3:1"
    assert claim_next(home, admin, owner, at=start) is not None
    finish_job(home, admin, job.id, owner, status="succeeded", at=start + timedelta(minutes=40))
    used = project_usage(home, "vision", start - timedelta(days=1))
    assert used.gpu_hours == pytest.approx(2 * 40 / 60) and used.cpu_hours == pytest.approx(40 / 60)
    with pytest.raises(PolicyViolationError) as refused:
        submit_job(home, admin, "pipeline", PIPELINE, project="vision", gpus=1)
    message = f"{refused.value.headline} ({refused.value.hint})"
    assert "over its GPU-hours quota: 1.33 of 1 GPU-hours used in the last 30 days" in message
    assert "ghaf quotas set vision --gpu-hours" in message
    # CPU-only work is still accepted; raising the quota lets GPU work in again.
    check_quota(home, "vision", cpus=1, gpus=0)
    set_quota(home, admin, "vision", gpu_hours=2)
    _submit(home, "vision", 1, gpus=1)


def test_a_killed_dispatcher_s_jobs_return_to_the_queue(home: Platform, tmp_path: Path) -> None:
    _drain(home)
    admin = home.admin()
    jobs = _submit(home, "zeta", 3)
    # A dispatcher in another process claims two jobs and is killed while holding them.
    script = (
        "import sys\n"
        "from ghaf.home import init_home\n"
        "from ghaf.settings import load_settings\n"
        "from ghaf.scheduling.dispatcher import process_owner\n"
        "from ghaf.scheduling.queue import claim_next\n"
        f"with init_home(load_settings(home={str(home.settings.home)!r}, "
        f"pipelines=[{PIPELINE!r}])) as p:\n"
        "    a = p.admin()\n"
        "    ids = [claim_next(p, a, process_owner()).id for _ in range(2)]\n"
        "    print(' '.join(ids), flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        held = child.stdout.readline().split()
        assert held == [jobs[0].id, jobs[1].id]
        assert find_orphans(home) == {}  # alive: nothing to take back
        child.kill()
        child.wait(timeout=30)
    orphans = find_orphans(home)
    assert set(orphans) == set(held)
    ran: list[str] = []
    lock = threading.Lock()

    def work(job: Job) -> dict[str, object]:
        with lock:
            ran.append(job.id)
        return {}

    with Dispatcher(home, admin, work, slots=2) as dispatcher:
        dispatcher.run(until_idle=True)
    assert sorted(ran) == sorted(j.id for j in jobs)
    assert all(get_job(home, j.id).status == "succeeded" for j in jobs)
    assert get_job(home, held[0]).attempts == 2


def test_dispatch_order_follows_weights_without_banking_idle_turns() -> None:
    share = FairShare()
    for _ in range(10):  # alpha alone for a while
        share.charge("alpha", 1.0)
    order = dispatch_order(share, {"alpha": 8, "beta": 8}, {"alpha": 1.0, "beta": 1.0})
    # beta arrives late: it alternates with alpha instead of taking eight turns in a row.
    assert order[:4] in (["alpha", "beta", "alpha", "beta"], ["beta", "alpha", "beta", "alpha"])
