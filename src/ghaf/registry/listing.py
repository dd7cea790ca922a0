"""The registry's model list, apart from the service: ``ghaf models list`` runs at every
shell prompt, and needs the version tables only, not lineage, cards, seals or signing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ghaf.registry.tables import ModelVersionRow, RegisteredModelRow

if TYPE_CHECKING:
    from ghaf.platform import Platform


def list_models(platform: Platform) -> list[tuple[str, int, str]]:
    """Every registered model: (name, latest version, project)."""
    with platform.read_session() as session:
        rows = session.execute(
            select(
                RegisteredModelRow.name,
                func.max(ModelVersionRow.version),
                RegisteredModelRow.project,
            )
            .join(ModelVersionRow, ModelVersionRow.model_id == RegisteredModelRow.id)
            .group_by(RegisteredModelRow.id, RegisteredModelRow.name, RegisteredModelRow.project)
            .order_by(RegisteredModelRow.name)
        ).all()
    return [(str(n), int(v), str(p)) for n, v, p in rows]
