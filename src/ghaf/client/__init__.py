"""The SDK's client: one surface over ``ghaf server`` or over a home in this process.

    client = ghaf.connect("https://ghaf.example", token=...)  # remote
    client = ghaf.connect()                                   # embedded: GHAF_HOME
    with client.start_run("churn", project="fraud") as run:
        run.log_metric("loss", 0.3)

Remote, it needs a URL and a credential, nothing else: no database URL, no key, no ML
stack (it imports httpx and orjson only). Embedded, the same client talks to the same
control plane's app in this process (:mod:`ghaf.client.local`), so both modes answer
with the same documents and the same errors.
"""

from __future__ import annotations

from ghaf.client.http import Client, connect
from ghaf.client.tracking import RemoteRun

__all__ = ["Client", "RemoteRun", "connect"]
