"""Demo stage: feature views over the ingested dataset versions, a point-in-time training
set, and the online store materialized up to the drift period's onset (``ghaf features
check VIEW`` compares it with the offline answer; the e2e test does).

A fraud model sees two kinds of input: what the transaction itself says (the request
fields: amount, hour, channel, country, merchant category), which the bank's card switch
sends with each request, and what is known about the customer (behaviour over the last
24 hours to 30 days, the account's age), which the feature store holds. The request
fields are encoded here, by one function used for the training set and for every
request, so training and serving cannot disagree on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from ghaf.data import DatasetVersion, read_dataset
from ghaf.demo.bank_data import CATEGORIES, DRIFT_ONSET, START
from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Datasets, FeatureSet
from ghaf.features import Entity, FeatureService, FeatureView, Field, Transform

ENTITY_KEY = "customer_id"
SERVICE = "fraud_features"
TRAINING_SET = "fraud_training"
BEHAVIOUR = "customer_behaviour"
PROFILE = "customer_profile"
BEHAVIOUR_FEATURES = (
    "tx_count_24h",
    "tx_count_7d",
    "spend_7d",
    "tx_count_30d",
    "spend_30d",
    "avg_amount_30d",
    "share_online_30d",
    "share_foreign_30d",
)
PROFILE_FEATURES = ("account_age_days",)
REQUEST_FIELDS = ("amount_aed", "hour", "online", "foreign", "merchant_category_code")
"""What each request carries besides the customer id, as numbers (see request_fields)."""
TRANSACTION_COLUMNS = ("tx_id", "customer_id", "event_ts", "amount_aed", "hour", "channel",
                       "country", "merchant_category")  # fmt: skip
"""The columns of a transaction that the request fields are made from."""
TRAINING_FROM = START + timedelta(days=30)
"""The training set's first transaction time: before it, the 30-day windows are still
filling up, and a model trained on them would learn values serving never sees."""

_BEHAVIOUR_SQL = """
WITH tx AS ({union}),
events AS (
    SELECT customer_id, event_ts, amount_aed, channel, country, TRUE AS is_tx FROM tx
    UNION ALL
    SELECT customer_id, event_ts + INTERVAL 86401 SECONDS, NULL::DOUBLE, NULL::VARCHAR,
           NULL::VARCHAR, FALSE
    FROM tx
)
SELECT customer_id, event_ts, tx_count_24h, tx_count_7d, spend_7d, tx_count_30d, spend_30d,
       spend_30d / nullif(tx_count_30d, 0) AS avg_amount_30d,
       share_online_30d, share_foreign_30d
FROM (
SELECT customer_id, event_ts,
       count(*) FILTER (WHERE is_tx) OVER w1 AS tx_count_24h,
       count(*) FILTER (WHERE is_tx) OVER w7 AS tx_count_7d,
       round(coalesce(sum(amount_aed) OVER w7, 0.0), 2) AS spend_7d,
       count(*) FILTER (WHERE is_tx) OVER w30 AS tx_count_30d,
       round(coalesce(sum(amount_aed) OVER w30, 0.0), 2) AS spend_30d,
       avg(CASE WHEN is_tx THEN (channel = 'online')::DOUBLE END) OVER w30 AS share_online_30d,
       avg(CASE WHEN is_tx THEN (country <> 'AE')::DOUBLE END) OVER w30 AS share_foreign_30d
FROM events
WINDOW w1 AS (PARTITION BY customer_id ORDER BY event_ts
              RANGE BETWEEN INTERVAL 24 HOURS PRECEDING AND CURRENT ROW),
       w7 AS (PARTITION BY customer_id ORDER BY event_ts
              RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW),
       w30 AS (PARTITION BY customer_id ORDER BY event_ts
               RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND CURRENT ROW)
)
"""

_CUSTOMER = Entity("customer", (ENTITY_KEY,), "A card holder")


def behaviour_view(transactions: Sequence[str]) -> FeatureView:
    """The customer's behaviour over these versions of the transaction data (lineage
    nodes ``dataset:NAME:V``, one per period; a new period is a new version of the view).

    A row is written after each transaction (counted) and again when it leaves the
    24-hour window (a second after its 24 hours): the latest row at any moment then
    holds the count of the 24 hours before that moment exactly, in a point-in-time
    join and in the online store alike, with no request-time computation. Spend is
    rounded to the fils: a windowed float sum's last bit depends on the order DuckDB
    adds in, and the online and offline answers must be equal, not nearly.
    """
    inputs = {f"tx{i}": node for i, node in enumerate(transactions)}
    union = " UNION ALL ".join(f"FROM {alias}" for alias in inputs)  # DuckDB's FROM-first
    return FeatureView(
        name=BEHAVIOUR,
        entities=(_CUSTOMER,),
        source=Transform(_BEHAVIOUR_SQL.format(union=union), inputs),
        features=tuple(
            Field(n, "int64" if n.startswith("tx_count") else "float64") for n in BEHAVIOUR_FEATURES
        ),
        timestamp_field="event_ts",
        # No TTL: the scenario's clock is simulated, and an online TTL is measured against
        # the wall clock, which would expire every value of a replayed past.
        ttl=None,
        owner="fraud-team",
        tags={"use": "fraud"},
        classification="confidential",
        description="Transactions and spend per customer over the last 24 hours, 7 and "
        "30 days, updated at each transaction and when one leaves the 24-hour window",
    )


def profile_view(customers: DatasetVersion) -> FeatureView:
    """The account's age, from the customers dataset version."""
    return FeatureView(
        name=PROFILE,
        entities=(_CUSTOMER,),
        source=customers.node,
        features=(Field("account_age_days", "int64"),),
        timestamp_field="signup_ts",
        owner="fraud-team",
        tags={"use": "fraud"},
        classification="confidential",
        description="Account age in days when the scenario starts",
    )


def _service() -> FeatureService:
    return FeatureService(
        SERVICE,
        (*(f"{BEHAVIOUR}:{n}" for n in BEHAVIOUR_FEATURES), f"{PROFILE}:account_age_days"),
        owner="fraud-team",
        description="What the fraud model looks up per customer",
    )


def request_fields(transactions: pa.Table) -> pa.Table:
    """The numbers a request carries for each transaction (``REQUEST_FIELDS``)."""
    codes = pc.index_in(transactions["merchant_category"], value_set=pa.array(CATEGORIES))
    return pa.table(
        {
            "amount_aed": pc.cast(transactions["amount_aed"], pa.float64()),
            "hour": pc.cast(transactions["hour"], pa.int64()),
            "online": pc.cast(pc.equal(transactions["channel"], "online"), pa.int64()),
            "foreign": pc.cast(pc.not_equal(transactions["country"], "AE"), pa.int64()),
            "merchant_category_code": pc.cast(pc.fill_null(codes, -1), pa.int64()),
        }
    )


def entity_frame(transactions: pa.Table) -> pa.Table:
    """One row per transaction, a second before it (so the customer's features are those
    before it, as a request sees them), with its request fields and label."""
    return pa.table(
        {
            ENTITY_KEY: transactions[ENTITY_KEY],
            "event_ts": pc.subtract(transactions["event_ts"], pa.scalar(timedelta(seconds=1))),
            "tx_id": transactions["tx_id"],
            **{name: request_fields(transactions)[name] for name in REQUEST_FIELDS},
            "is_fraud": transactions["is_fraud"],
        }
    )


def build_features(env: DemoEnv, datasets: Datasets) -> FeatureSet:
    """Apply the views over the dataset versions, join the training set from the
    transactions version, materialize the online store until the drift period."""
    from ghaf.features.materialize import materialize
    from ghaf.features.registry import apply_definitions
    from ghaf.features.retrieval import get_historical_features, save_training_set

    platform, admin = env.platform, env.platform.admin()
    behaviour = behaviour_view([datasets.transactions.node])
    profile = profile_view(datasets.customers)
    apply_definitions(platform, admin, [_CUSTOMER, behaviour, profile, _service()], source="demo")
    columns = [*TRANSACTION_COLUMNS, "is_fraud"]
    transactions = read_dataset(platform, datasets.transactions.ref, columns=columns)
    ts = transactions["event_ts"]
    frame = entity_frame(
        transactions.filter(pc.greater_equal(ts, pa.scalar(TRAINING_FROM, ts.type)))
    )
    joined = get_historical_features(platform, frame, SERVICE)
    training = save_training_set(platform, admin, TRAINING_SET, joined, SERVICE)
    results = materialize(platform, admin, [BEHAVIOUR, PROFILE], until=DRIFT_ONSET)
    versions = {r.view: r.version for r in results}
    return FeatureSet(
        service=SERVICE,
        entity_key=ENTITY_KEY,
        request_fields=REQUEST_FIELDS,
        features=(*BEHAVIOUR_FEATURES, *PROFILE_FEATURES),
        views=tuple(f"feature_view:{name}:{versions[name]}" for name in (BEHAVIOUR, PROFILE)),
        training_set=training,
        training_from=TRAINING_FROM,
        online_until=DRIFT_ONSET,
        materialized=sum(r.rows for r in results),
    )
