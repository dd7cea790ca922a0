"""Privacy: retention rules applied on a schedule, right to erasure, erasure certificates."""

from ghaf.privacy.erasure import erase_dataset, erase_subject, get_certificate, list_certificates
from ghaf.privacy.retention import list_retention_runs, plan_retention, run_retention
from ghaf.privacy.verify import verify_certificate

__all__ = [
    "erase_dataset",
    "erase_subject",
    "get_certificate",
    "list_certificates",
    "list_retention_runs",
    "plan_retention",
    "run_retention",
    "verify_certificate",
]
