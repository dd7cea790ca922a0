"""The demo scenario's data: a UAE bank's customers and card transactions, seeded.

90 days of normal traffic with a fraud label (~2%) that depends on amount, channel,
country, hour, the account's age and the customer's transactions in the 24 hours
before; then a 30-day drift period in which amounts rise, the channel mix moves online
and a card-testing fraud pattern (many small online electronics/digital purchases)
appears. All vectorized NumPy.

The generator knows each transaction's true fraud probability: it is returned beside
the tables (never a column of them, so it is neither ingested nor a feature) for the
oracle AUC a model is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2026, 1, 1, tzinfo=UTC)
DAY_SECONDS = 86_400
EMIRATES = ("Abu Dhabi", "Dubai", "Sharjah", "Ajman", "Umm Al Quwain", "Ras Al Khaimah", "Fujairah")
EMIRATE_WEIGHTS = (0.30, 0.38, 0.15, 0.06, 0.02, 0.06, 0.03)
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_WEIGHTS = (0.12, 0.30, 0.26, 0.17, 0.10, 0.05)
CATEGORIES = (
    "grocery",
    "fuel",
    "restaurants",
    "travel",
    "electronics",
    "fashion",
    "digital_goods",
    "utilities",
    "health",
    "entertainment",
)
CATEGORY_WEIGHTS = (0.24, 0.12, 0.16, 0.05, 0.06, 0.10, 0.07, 0.08, 0.05, 0.07)
CATEGORY_MEDIAN_AED = (120, 150, 90, 1800, 900, 350, 60, 400, 250, 150)
COUNTRIES = ("AE", "SA", "IN", "GB", "US", "EG", "PK", "OM", "NG", "RU")
FOREIGN_WEIGHTS = (0.0, 0.22, 0.2, 0.14, 0.1, 0.1, 0.08, 0.08, 0.04, 0.04)


DRIFT_ONSET = START + timedelta(days=90)
"""When the drift period begins: the first moment of day 90."""


@dataclass(frozen=True)
class BankData:
    """The three tables of the scenario, and each transaction's true fraud probability
    (row-aligned with its table; the generator's knowledge, never ingested)."""

    customers: pa.Table
    transactions: pa.Table
    drift_transactions: pa.Table
    fraud_probability: np.ndarray
    drift_fraud_probability: np.ndarray

    def probability_of(self, tx_ids: np.ndarray) -> np.ndarray:
        """The true fraud probability of each transaction id (either period)."""
        both = np.concatenate([self.fraud_probability, self.drift_fraud_probability])
        return both[np.asarray(tx_ids, dtype=np.int64) - 1]

    def write(self, directory: Path) -> dict[str, Path]:
        """Write each table as Parquet (zstd) under ``directory``; returns the paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("customers", "transactions", "drift_transactions"):
            path = directory / f"{name}.parquet"
            pq.write_table(getattr(self, name), path, compression="zstd")
            paths[name] = path
        return paths


def generate_bank_data(
    seed: int = 7,
    customers: int = 5_000,
    transactions: int = 200_000,
    drift_transactions: int = 70_000,
) -> BankData:
    """Generate the scenario; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    customer_table, activity, account_age = _customers(rng, customers)
    normal, p_normal = _transactions(rng, activity, account_age, transactions, 0, 90, drift=False)
    drifted, p_drift = _transactions(
        rng,
        activity,
        account_age,
        drift_transactions,
        90,
        120,
        drift=True,
        first_tx_id=transactions + 1,
    )
    return BankData(customer_table, normal, drifted, p_normal, p_drift)


def _customers(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    account_age = rng.gamma(2.0, 400.0, n).astype(np.int64) + 1
    signup = np.datetime64(START.replace(tzinfo=None), "s") - account_age * np.timedelta64(1, "D")
    table = pa.table(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "emirate": rng.choice(EMIRATES, n, p=EMIRATE_WEIGHTS),
            "age_band": rng.choice(AGE_BANDS, n, p=AGE_WEIGHTS),
            "gender": rng.choice(("F", "M"), n, p=(0.42, 0.58)),
            "account_age_days": account_age,
            "signup_ts": pa.array(signup, pa.timestamp("s", tz="UTC")),
        }
    )
    activity = rng.lognormal(0.0, 0.8, n)
    return table, activity / activity.sum(), account_age


def _transactions(
    rng: np.random.Generator,
    activity: np.ndarray,
    account_age: np.ndarray,
    n: int,
    first_day: int,
    last_day: int,
    *,
    drift: bool,
    first_tx_id: int = 1,
) -> tuple[pa.Table, np.ndarray]:
    customer = rng.choice(activity.size, n, p=activity) + 1
    offsets = rng.integers(first_day * DAY_SECONDS, last_day * DAY_SECONDS, n)
    order = np.argsort(offsets, kind="stable")
    customer, offsets = customer[order], offsets[order]
    hour = (offsets % DAY_SECONDS) // 3600
    category = rng.choice(len(CATEGORIES), n, p=CATEGORY_WEIGHTS)
    medians = np.asarray(CATEGORY_MEDIAN_AED, dtype=np.float64)[category]
    sigma, scale, online_share = (0.95, 1.35, 0.55) if drift else (0.8, 1.0, 0.35)
    amount = np.round(medians * scale * rng.lognormal(0.0, sigma, n), 2)
    online = rng.random(n) < online_share
    foreign = rng.random(n) < 0.12
    country = np.where(foreign, rng.choice(len(COUNTRIES), n, p=FOREIGN_WEIGHTS), 0)
    recent = _recent_count(customer, offsets)
    logit = (
        0.9 * np.log(amount / medians)
        + 0.9 * online
        + 1.4 * foreign
        + 1.1 * (hour < 5)
        + 0.45 * np.minimum(recent, 6)
        + 0.6 * (account_age[customer - 1] < 90)
    )
    if drift:
        # Card testing: bursts of small online electronics/digital purchases.
        testing = online & np.isin(category, (4, 6)) & (amount < medians * 0.6)
        logit = logit + 2.8 * testing
    probability = _calibrated(logit, target=0.02 if not drift else 0.035)
    is_fraud = rng.random(n) < probability
    ts = np.datetime64(START.replace(tzinfo=None), "s") + offsets.astype("timedelta64[s]")
    table = pa.table(
        {
            "tx_id": np.arange(first_tx_id, first_tx_id + n, dtype=np.int64),
            "customer_id": customer.astype(np.int64),
            "event_ts": pa.array(ts, pa.timestamp("s", tz="UTC")),
            "amount_aed": amount,
            "merchant_category": np.asarray(CATEGORIES)[category],
            "channel": np.where(online, "online", "pos"),
            "country": np.asarray(COUNTRIES)[country],
            "hour": hour.astype(np.int32),
            "is_fraud": is_fraud,
        }
    )
    return table, probability


def _recent_count(customer: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """How many of the same customer's transactions fall in the 24 hours before each one."""
    key = customer.astype(np.int64) * (1 << 32) + offsets
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    counts = np.arange(key.size) - np.searchsorted(sorted_key, sorted_key - DAY_SECONDS)
    result: np.ndarray = np.empty_like(counts)
    result[order] = counts
    return result


def _calibrated(logit: np.ndarray, target: float) -> np.ndarray:
    """Shift ``logit`` so the mean fraud probability is ``target`` (bisection)."""
    low, high = -30.0, 10.0
    for _ in range(60):
        mid = (low + high) / 2
        if float(np.mean(1 / (1 + np.exp(-(logit + mid))))) > target:
            high = mid
        else:
            low = mid
    result: np.ndarray = 1 / (1 + np.exp(-(logit + low)))
    return result
