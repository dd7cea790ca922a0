"""The statistics of A/B experiments: a pure library, no I/O, every number recorded.

Each test returns a frozen dataclass holding every value it used (estimates, standard
errors, statistic, p-value, intervals, sample sizes, alpha) with ``to_dict()`` for the
API and the audit record. :func:`decide` turns them into a verdict that fails closed.
"""

from ghaf.experiments.stats.cuped import cuped
from ghaf.experiments.stats.decision import Decision, Guardrail, decide
from ghaf.experiments.stats.fixed import two_proportion_z, welch_t
from ghaf.experiments.stats.groups import GroupStats
from ghaf.experiments.stats.multiple import adjust
from ghaf.experiments.stats.power import two_proportion_sample_size
from ghaf.experiments.stats.sequential import msprt
from ghaf.experiments.stats.srm import sample_ratio_check

__all__ = [
    "Decision",
    "GroupStats",
    "Guardrail",
    "adjust",
    "cuped",
    "decide",
    "msprt",
    "sample_ratio_check",
    "two_proportion_sample_size",
    "two_proportion_z",
    "welch_t",
]
