"""Start a Ray worker node joined to the head at ``--address``, with every server on 127.0.0.1.

What ``ray start --address=ADDR --block`` does, without its refusal: Ray 2.60's CLI refuses a
worker node when ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, and with it ``1`` it swaps
``127.0.0.1`` (``--node-ip-address`` and the head's address alike) for the machine's routable
address (``services.resolve_ip_for_localhost``), so its raylet, agents and workers listen on
every interface. Ray's gRPC servers listen on loopback only when the node IP is exactly
``127.0.0.1``; this starts the node the way ``ray.cluster_utils.Cluster.add_node`` (Ray's own
multi-node-on-one-machine helper) does, with that IP. SIGTERM stops the node's processes.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True, help="the head's GCS, 127.0.0.1:PORT")
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--object-store-memory", type=int, default=80_000_000)
    args = parser.parse_args()
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=args.address,
        node_ip_address="127.0.0.1",
        num_cpus=args.num_cpus,
        num_gpus=0,
        object_store_memory=args.object_store_memory,
        # The head runs the one log monitor; the agent picks a free port, not the head's.
        include_log_monitor=False,
        dashboard_agent_listen_port=None,
    )
    # shutdown_at_exit: a SIGTERM handler and an atexit hook kill the node's processes.
    Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print("ray worker node started", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
