"""The closed loop: a drift or model-quality alert on a deployment retrains it by its
policy's pipeline, gates and registers the candidate, asks for the approval the release
policy wants, and canaries it against the champion until it is promoted or rolled back;
every hop on the alert's incident and in the audit trail."""

from ghaf.retraining.loop import RetrainLoop
from ghaf.retraining.policy import (
    delete_retrain_policy,
    get_retrain_policy,
    list_retrain_policies,
    list_retrain_runs,
    set_retrain_policy,
)
from ghaf.retraining.records import RetrainPolicy, RetrainRun

__all__ = [
    "RetrainLoop",
    "RetrainPolicy",
    "RetrainRun",
    "delete_retrain_policy",
    "get_retrain_policy",
    "list_retrain_policies",
    "list_retrain_runs",
    "set_retrain_policy",
]
