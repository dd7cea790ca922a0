"""Scheduling: project quotas, the job queue with priorities and fair share, dispatchers."""

from ghaf.scheduling.dispatcher import Dispatcher
from ghaf.scheduling.queue import Job, list_jobs, submit_job
from ghaf.scheduling.quotas import Quota, Usage, check_quota, project_usage, set_quota

__all__ = [
    "Dispatcher",
    "Job",
    "Quota",
    "Usage",
    "check_quota",
    "list_jobs",
    "project_usage",
    "set_quota",
    "submit_job",
]
