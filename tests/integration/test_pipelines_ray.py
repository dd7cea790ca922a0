"""The same pipeline on the local executor and on a local Ray cluster (a head node from
``ray start --head`` and one worker node, one CPU each, started and stopped here on 127.0.0.1)
gives the same outputs, and nothing of the cluster listens beyond loopback.

The cluster is the shared one of ``ray_cluster.py``."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ghaf.home import init_home
from ghaf.pipelines import Pipeline, output_of, run_pipeline
from ghaf.pipelines.examples import flaky, numbers, placement
from ghaf.platform import Platform
from ghaf.settings import load_settings
from tests.integration.ray_cluster import GROUP, RayCluster

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.xdist_group(GROUP),
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _platform(home: Path) -> Platform:
    return init_home(load_settings(home=home))


def test_same_outputs_local_and_ray(ray_cluster: RayCluster, tmp_path: Path) -> None:
    from ghaf.pipelines.ray import RayExecutor

    address = ray_cluster.address
    with _platform(tmp_path / "local") as local:
        local_run = run_pipeline(local, local.admin(), numbers(rows=300))
        local_report = (output_of(local, local_run, "write_report") / "report.txt").read_text()
    assert local_run.status == "succeeded"

    # capacity=2: the worker node may join after the executor counts the cluster's CPUs.
    executor = RayExecutor(address, capacity=2)
    # Imported after the executor set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which Ray reads once.
    import ray

    nodes = ray_cluster.wait_for_nodes(2)
    assert len(nodes) == 2, nodes
    assert ray.cluster_resources().get("CPU") == 2.0
    try:
        with _platform(tmp_path / "ray") as remote:
            ray_run = run_pipeline(remote, remote.admin(), numbers(rows=300), executor=executor)
            assert ray_run.status == "succeeded", ray_run.error
            assert ray_run.executor == "ray"
            for step in local_run.steps:
                assert ray_run.step(step.step).output_digest == step.output_digest, step.step
            report = (output_of(remote, ray_run, "write_report") / "report.txt").read_text()
            assert report == local_report

            again = run_pipeline(remote, remote.admin(), numbers(rows=300), executor=executor)
            assert {s.status for s in again.steps} == {"cached"}

            # Two one-CPU steps on two one-CPU nodes, each holding its CPU until both
            # started (at most 60 s): one ran on each. A sleep of 2 s was not enough
            # once: under CI load the second started only after the first had finished.
            meet = str(tmp_path / "meet")
            placed = run_pipeline(remote, remote.admin(), placement(60.0, meet), executor=executor)
            assert placed.status == "succeeded", placed.error
            ran_on = {output_of(remote, placed, s.step)["node"] for s in placed.steps}
            assert ran_on == {n["NodeID"] for n in nodes}

            flaky_pipeline = Pipeline("flaky")
            flaky_pipeline.add(flaky, marker_dir=str(tmp_path / "m"), failures=2)
            retried = run_pipeline(remote, remote.admin(), flaky_pipeline, executor=executor)
            assert retried.status == "succeeded" and retried.step("flaky").attempts == 3
    finally:
        executor.close()
        # Collect the driver's leftover Popen objects here, where their warning is
        # ignored, instead of in whichever test happens to run next on this worker.
        gc.collect()

    exposed = ray_cluster.listening_beyond_loopback()
    assert not exposed, f"Ray listens beyond loopback on {exposed}"
