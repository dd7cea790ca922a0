"""A home with something to serve at both data-plane doors, for tests of the real servers.

``fraud@champion`` (registered by the home's owner, approved by a second person) for
``ghaf serve``, and a materialized feature view ``customer_stats`` for ``ghaf features
serve``. Settings the server processes must share (identity, TLS) go in ``ghaf.toml``,
written before the home is opened, so the test and the servers read the same file.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.testing.online_store import make_source
from tests.unit.serving.server_processes import ServerProcess, register_champion

FEATURES = {"entities": {"customer_id": [1, 2]}, "features": ["customer_stats:spend"]}
"""A body for ``POST /get-online-features``."""


def toml_value(value: Any) -> str:
    """A TOML value for a string, a path or a list of strings (JSON strings are TOML)."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def toml_section(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]", *(f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def open_served_home(home: Path, work: Path, ghaf_toml: str) -> tuple[Platform, np.ndarray]:
    """Write ``ghaf.toml``, initialize the home, seed the champion and the feature view.

    Returns:
        The opened platform and three rows the champion scores.
    """
    from sklearn.linear_model import LogisticRegression

    home.mkdir(parents=True, mode=0o700)
    (home / "ghaf.toml").write_text(ghaf_toml)
    platform = init_home(load_settings(home=home))
    x = np.random.default_rng(5).normal(size=(60, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    register_champion(platform, model, work / "saved", x[:3])
    customer = Entity("customer", ("customer_id",))
    source = make_source(work / "source.parquet")
    fields = (Field("spend"), Field("count", "int64"))
    view = FeatureView(
        "customer_stats", (customer,), str(source), fields, ttl=timedelta(days=10_000)
    )
    admin = platform.admin()
    apply_definitions(platform, admin, [customer, view])
    materialize(platform, admin)
    return platform, x[:3]


def oip(rows: np.ndarray) -> dict[str, Any]:
    """An Open Inference Protocol v2 request body for ``rows``."""
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


def start_together(*servers: ServerProcess) -> None:
    """Start ``servers`` at once and wait until every one is healthy.

    Each server process spends its start on imports and loading; started together they
    do it side by side instead of one after another. If any fails to start, all are
    stopped and its error is raised.
    """
    with ThreadPoolExecutor(len(servers)) as pool:
        errors = [error for error in pool.map(_start_error, servers) if error is not None]
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]


def _start_error(server: ServerProcess) -> Exception | None:
    try:
        server.start()
    except Exception as exc:  # raised by start_together, after every server is stopped
        return exc
    return None
