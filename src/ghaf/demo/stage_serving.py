"""Demo stage: serve the champion over HTTP, send a burst of requests, score the drift period."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ghaf.demo.runner import DemoContext
from ghaf.errors import AlreadyExistsError, GhafError
from ghaf.security.signing import sign_model_dir
from ghaf.serving.base import ModelSpec, Signature

COLUMNS = ("amount_aed", "hour", "online")
SCORER = "svc-fraud-scorer"
"""The service account the demo's clients call the model server as."""


def _features(table: pa.Table) -> pa.Table:
    online = pc.cast(pc.equal(table["channel"], "online"), pa.float32())
    return pa.table(
        {
            "customer_id": table["customer_id"],
            "amount_aed": pc.cast(table["amount_aed"], pa.float32()),
            "hour": pc.cast(table["hour"], pa.float32()),
            "online": online,
        }
    )


def _seal(ctx: DemoContext, model_dir: Path) -> None:
    sign_model_dir(ctx.platform.settings, model_dir)


def _quick_model(ctx: DemoContext) -> ModelSpec:
    """Train a small fraud model on the transactions (when no registry champion exists)."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier

    table = pq.read_table(ctx.results["bank_paths"]["transactions"]).slice(0, 60_000)
    feats = _features(table)
    x = np.column_stack([feats[c].to_numpy() for c in COLUMNS])
    y = table["is_fraud"].to_numpy(zero_copy_only=False).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=7).fit(x, y)
    model_dir = ctx.workdir / "serving" / "fraud-quick"
    model_dir.mkdir(parents=True, exist_ok=True)
    sio.dump(model, model_dir / "model.skops")
    _seal(ctx, model_dir)
    return ModelSpec("fraud", "1", "skops", model_dir, Signature.tabular(COLUMNS))


def _champion(ctx: DemoContext) -> ModelSpec | None:
    model = ctx.results.get("model")
    if model is None:
        return None
    from ghaf.serving.models import resolve_model

    name = getattr(model, "name", None) or (model.get("name") if isinstance(model, dict) else None)
    try:
        spec = resolve_model(ctx.platform, f"{name}@champion", ctx.workdir / "serving")
    except GhafError:
        return None
    return spec if set(spec.signature.columns if spec.signature else ()) == set(COLUMNS) else None


def _behaviour_model(ctx: DemoContext, table: pa.Table) -> tuple[ModelSpec, Any] | None:
    """A second model over request fields + the customer's online features (customer ids in).

    Trained on transactions joined with the materialized online features (one lookup),
    served with an ``OnlineStoreLookup``: requests carry ``customer_id`` and the request
    fields; the server fetches the rest from the online store, one lookup per batch.
    """
    features = ctx.results.get("features")
    if not features:
        return None
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ghaf.features.online import get_online_features
    from ghaf.serving.records import OnlineStoreLookup

    key, refs = str(features["entity_key"]), list(features["refs"])[:4]
    names = [ref.split(":")[-1] for ref in refs]
    sample = table.slice(0, 20_000)
    online = get_online_features(ctx.platform, {key: sample[key].to_pylist()}, refs).columns
    feats = _features(sample)
    x = np.column_stack(
        [feats[c].to_numpy() for c in COLUMNS]
        + [np.asarray(online[n], dtype=np.float64) for n in names]
    )
    y = sample["is_fraud"].to_numpy(zero_copy_only=False).astype(int)
    model = HistGradientBoostingClassifier(max_iter=15, random_state=7).fit(x, y)
    import skops.io as sio

    model_dir = ctx.workdir / "serving" / "fraud-behaviour"
    model_dir.mkdir(parents=True, exist_ok=True)
    sio.dump(model, model_dir / "model.skops")
    _seal(ctx, model_dir)
    signature = Signature.tabular((*COLUMNS, *names), datatype="FP64")
    spec = ModelSpec("fraud-behaviour", "1", "skops", model_dir, signature)
    return spec, OnlineStoreLookup(ctx.platform, key, refs)


def _scorer_token(ctx: DemoContext, project: str) -> str:
    """A token of the demo's scoring service account: the server answers nobody without one.

    The home's owner creates the account, binds it the ``model_server`` role in the
    model's project and mints a short-lived token, as ``ghaf tokens create`` would.
    """
    from ghaf.access.bindings import bind_role, create_principal
    from ghaf.access.tokens import create_token

    platform, owner = ctx.platform, ctx.platform.admin()
    with contextlib.suppress(AlreadyExistsError):
        create_principal(platform, owner, SCORER, kind="service", description="demo scoring")
    with contextlib.suppress(AlreadyExistsError):
        bind_role(platform, owner, SCORER, "model_server", project=project)
    made = create_token(
        platform, owner, SCORER, project=project, ttl=timedelta(hours=1), description="demo"
    )
    return made.secret


async def _burst(
    url: str, records: list[dict[str, Any]], token: str, path: str = "/predict"
) -> list[int]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        replies = await asyncio.gather(*(client.post(path, json=[record]) for record in records))
    return [reply.status_code for reply in replies]


def serve_and_score(ctx: DemoContext) -> str:
    from ghaf.access.guard import RequestGuard
    from ghaf.serving.app import Deployment, ServingApp
    from ghaf.serving.batch import score_file
    from ghaf.serving.models import load_served
    from ghaf.serving.predlog import ParquetSink, PredictionLogger
    from ghaf.serving.server import background_server

    champion = _champion(ctx)
    spec = champion or _quick_model(ctx)
    served = load_served(spec, platform=ctx.platform)
    if served.runtime is None:
        return f"model refused: {served.error}"
    record = ""
    if champion is not None:
        from ghaf.serving.deployments import record_deployment

        deployed = record_deployment(
            ctx.platform, ctx.platform.admin(), "fraud-live", [f"{spec.name}@champion"]
        )
        record = f" as deployment {deployed.name} r{deployed.revision}"
    deployments = [Deployment.of(served)]
    behaviour = _behaviour_model(ctx, pq.read_table(ctx.results["bank_paths"]["transactions"]))
    if behaviour is not None:
        second = load_served(behaviour[0], platform=ctx.platform)
        key = behaviour[1].entity_key
        deployments.append(Deployment.of(second, entity_key=key, features=behaviour[1]))
    log_dir = ctx.workdir / "serving" / "prediction-log"
    logger = PredictionLogger([ParquetSink(log_dir)], flush_every=0.2)
    # Authenticated and authorized per request, like `ghaf serve`: the scorer's token only.
    app = ServingApp(deployments, prediction_log=logger, guard=RequestGuard(ctx.platform))
    token = _scorer_token(ctx, spec.project or ctx.platform.default_project)
    drift = _features(pq.read_table(ctx.results["bank_paths"]["drift_transactions"]))
    sample = drift.slice(0, 200).to_pylist()
    started = time.perf_counter()
    with background_server(app) as url:
        codes = asyncio.run(_burst(url, sample, token, f"/predict/{spec.name}"))
        by_id: list[int] = []
        if behaviour is not None:
            by_id = asyncio.run(_burst(url, sample, token, "/predict/fraud-behaviour"))
        anonymous = asyncio.run(_burst(url, sample[:1], "", f"/predict/{spec.name}"))[0]
    seconds = time.perf_counter() - started
    ok = codes.count(200)
    drift_in = ctx.workdir / "serving" / "drift-features.parquet"
    pq.write_table(drift, drift_in)
    scored = ctx.workdir / "serving" / "drift-scored.parquet"
    stats = score_file(served.runtime, drift_in, scored, progress=False)
    ctx.results["serving"] = {"scored_path": scored, "prediction_log": log_dir, "spec": spec}
    with_ids = ""
    if behaviour is not None:
        joiner = deployments[1].joiner
        lookups = joiner.lookups if joiner is not None else 0
        with_ids = (
            f"; {by_id.count(200)}/{len(by_id)} by customer id "
            f"(online features, {lookups} store lookups)"
        )
    return (
        f"served {spec.name} v{spec.version}{record}: {ok}/{len(codes)} requests ok "
        f"in {seconds:.1f} s (with the scorer's token; without one: {anonymous})"
        f"{with_ids}; scored {stats.rows:,} drift-period rows in batch"
    )
