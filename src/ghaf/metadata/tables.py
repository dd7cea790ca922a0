"""Where each concern's tables live; importing this module registers them all on ``Base``.

Each concern owns its tables in its own module; add the module here when it has some.
"""

from __future__ import annotations

import importlib

from ghaf.metadata.base import Base

TABLE_MODULES: tuple[str, ...] = (
    "ghaf.metadata.platform_tables",
    "ghaf.projects.tables",
    "ghaf.security.audit_tables",
    "ghaf.registry.tables",
    "ghaf.registry.release_tables",
    "ghaf.registry.code_tables",
    "ghaf.tracking.tables",
    "ghaf.data.tables",
    "ghaf.lineage.tables",
    "ghaf.security.identity_tables",
    "ghaf.access.tables",
    "ghaf.features.tables",
    "ghaf.monitoring.tables",
    "ghaf.pipelines.tables",
    "ghaf.serving.tables",
    "ghaf.experiments.tables",
    "ghaf.alerts.tables",
    "ghaf.incidents.tables",
    "ghaf.slo.tables",
    "ghaf.retraining.tables",
    "ghaf.cost.tables",
    "ghaf.shipping.tables",
    "ghaf.scheduling.tables",
    "ghaf.privacy.tables",
)


def load_all_tables() -> type[Base]:
    """Import every table module so ``Base.metadata`` is complete (for migrations, checks)."""
    for module in TABLE_MODULES:
        importlib.import_module(module)
    return Base
