"""The remote client: the SDK over ``ghaf server``, with the errors of embedded mode.

    client = ghaf.connect("https://ghaf.example", token=...)
    with client.start_run("churn", project="fraud") as run:
        run.log_metric("loss", 0.3)

It needs a URL and a credential, nothing else: no database URL, no key, no ML stack
(it imports httpx and orjson only).
"""

from __future__ import annotations

from ghaf.client.http import Client, connect
from ghaf.client.tracking import RemoteRun

__all__ = ["Client", "RemoteRun", "connect"]
