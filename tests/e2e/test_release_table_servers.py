"""Zero escalations at the data-plane doors: ``ghaf serve`` and ``ghaf features serve``.

The same table as ``tests/unit/registry/test_release_table.py`` for the two servers:
every role × {author, other person, home's owner, anonymous}, each request over real
HTTP to a real server process, the expectation computed from the shipped RBAC file
(``policy.yaml``: ``model.predict``, ``features.read``, ``features.read_pii``). The model
server also refuses to start on a version the release policy does not allow.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from ghaf.data.store import write_dataset
from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model, set_alias
from ghaf.security.rbac import OWNER_ROLES, Grants, Policy
from ghaf.settings import load_settings
from ghaf.testing.online_store import make_source
from ghaf.testing.people import mint, person
from tests.unit.serving.server_processes import ServerProcess, bearer, ghaf

pytestmark = pytest.mark.slow
RBAC = Policy.default()
ROLES = sorted(RBAC.roles)


def allows(roles: set[str], action: str) -> bool:
    return RBAC.decide(Grants(frozenset(roles)), action).allowed


@pytest.fixture
def platform(isolated_env: Path) -> Iterator[Platform]:
    """A home in a UAE region (pii may be stored there), in ghaf.toml for the servers too."""
    isolated_env.mkdir(parents=True, mode=0o700)
    (isolated_env / "ghaf.toml").write_text('artifact_region = "ae-auh-1"\n')
    with init_home(load_settings(home=isolated_env)) as opened:
        yield opened


@pytest.fixture
def world(platform: Platform, tmp_path: Path) -> dict[str, Any]:
    """fraud:1 (approved, @champion) and fraud:2 (unapproved), both by ana; two feature
    views, one pii by lineage; a token per role for ana and for another person each."""
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(5).normal(size=(60, 3)).astype(np.float32)
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), tmp_path / "m")
    ana = person(platform, "ana", ["data_scientist"])
    pat = person(platform, "pat", ["project_admin"])
    # ben's token is minted by pat, not by the owner: a second person to ana either way
    ben = mint(platform, "ben", ["model_approver"], minted_by=pat, bind_on="default")
    for _ in range(2):
        register_model(platform, ana, "fraud", tmp_path / "m")
    from ghaf.access.tokens import verify_token

    approve_model_version(platform, verify_token(platform, ben), "fraud:1")
    set_alias(platform, platform.admin(), "fraud", "champion", 1)
    source = make_source(tmp_path / "s.parquet")
    admin = platform.admin()
    write_dataset(
        platform,
        admin,
        "customers",
        pq.read_table(source),
        source="t",
        column_tags={"spend": "pii"},
    )
    customer = Entity("customer", ("customer_id",))
    fields, ttl = (Field("spend"), Field("count", "int64")), timedelta(days=10_000)
    apply_definitions(
        platform,
        admin,
        [
            customer,
            FeatureView("customer_stats", (customer,), str(source), fields, ttl=ttl),
            FeatureView("customer_private", (customer,), "dataset:customers", fields, ttl=ttl),
        ],
    )
    materialize(platform, admin)
    tokens: dict[tuple[str, str], str] = {}
    for role in ROLES:
        tokens[("author", role)] = mint(platform, "ana", [role])
        tokens[("other", role)] = mint(platform, f"other-{role}", [role])
    tokens[("owner", "*")] = mint(platform, admin.name, list(OWNER_ROLES))
    return {"x": x, "tokens": tokens}


def _cases(tokens: dict[tuple[str, str], str]) -> Iterator[tuple[str, str, set[str]]]:
    for (who, role), token in sorted(tokens.items()):
        yield who, token, set(OWNER_ROLES) if role == "*" else {role}
    yield "anonymous", "", set()


def test_no_server_door_serves_past_the_policy(
    platform: Platform, world: dict[str, Any], tmp_path: Path
) -> None:
    home = platform.settings.home
    # A version the release policy refuses is never loaded, whoever starts the server.
    refused = ghaf(home, "serve", "fraud:2", "--port", "1")
    assert refused.returncode == 7 and "fraud:2 may not" in refused.stderr
    model = ServerProcess(home, ("serve", "fraud@champion"), "/v2/health/ready", tmp_path / "m.log")
    feats = ServerProcess(home, ("features", "serve"), "/health", tmp_path / "f.log")
    rows = world["x"][:2]
    oip = {"inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP32",
                       "data": rows.ravel().tolist()}]}  # fmt: skip
    plain = {"entities": {"customer_id": [1, 2]}, "features": ["customer_stats:spend"]}
    private = {"entities": {"customer_id": [1, 2]}, "features": ["customer_private:spend"]}
    wrong: list[str] = []
    checked = 0
    model.start()
    feats.start()
    try:
        for who, token, roles in _cases(world["tokens"]):
            headers = bearer(token) if token else {}
            attempts = (
                (model.url + "/v2/models/fraud/infer", oip, "model.predict"),
                (feats.url + "/get-online-features", plain, "features.read"),
                (feats.url + "/get-online-features", private, "features.read_pii"),
            )
            for url, body, action in attempts:
                status = httpx.post(url, json=body, headers=headers, timeout=60).status_code
                expected = 401 if who == "anonymous" else 200 if allows(roles, action) else 403
                checked += 1
                if status != expected:
                    wrong.append(f"{who} {sorted(roles)} {action}: {status}, expected {expected}")
    finally:
        logs = model.stop() + feats.stop()
    assert wrong == [], "\n".join(wrong)
    assert checked == 3 * (2 * len(ROLES) + 2)
    assert "Traceback" not in logs
