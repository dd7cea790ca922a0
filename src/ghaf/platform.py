"""The ``Platform``: settings plus the open backends, handed to every service call."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ghaf.artifacts.base import ArtifactStore
from ghaf.artifacts.store import ContentStore
from ghaf.backends import open_blob_store, open_event_bus
from ghaf.events.base import EventBus
from ghaf.metadata.engine import create_metadata_engine
from ghaf.security.audit import AuditLog
from ghaf.security.authz import Authorizer
from ghaf.security.checkpoints import Checkpointer
from ghaf.security.identity import Actor
from ghaf.security.rbac import Policy, RbacAuthorizer
from ghaf.settings import GhafSettings
from ghaf.spine import Spine


class Platform:
    """Open backends for one home; cheap to keep, close it when done."""

    def __init__(self, settings: GhafSettings, *, authorizer: Authorizer | None = None) -> None:
        self.settings = settings
        self.engine: Engine = create_metadata_engine(settings.resolved_metadata_url)
        self.audit = AuditLog(Checkpointer(settings, self.engine))
        self.spine = Spine(
            self.engine,
            authorizer
            or RbacAuthorizer(
                Policy.default(),
                self.read_session,
                admins=[settings.resolved_admin_user, *settings.local_principals],
            ),
            self.audit,
        )

    @property
    def default_project(self) -> str:
        return self.settings.project

    def admin(self) -> Actor:
        """The embedded-mode admin actor (the local OS user unless settings say otherwise)."""
        return Actor(self.settings.resolved_admin_user)

    def read_session(self) -> Session:
        """A session for reads; any write through it is refused by the engine's guard."""
        return Session(self.engine)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        blobs = open_blob_store(
            self.settings.resolved_artifact_url,
            region=self.settings.artifact_region,
            endpoint_url=self.settings.s3_endpoint_url,
        )
        if self.settings.security.encrypt_artifacts:
            from ghaf.security.encrypted_store import EncryptedArtifactStore
            from ghaf.security.keys import open_key_provider

            keys = open_key_provider(self.settings)
            return EncryptedArtifactStore(blobs, keys, project=self.settings.project)
        return ContentStore(blobs)

    @cached_property
    def events(self) -> EventBus:
        """The event bus."""
        return open_event_bus(self.settings.event_bus_url)

    def close(self) -> None:
        """Close the event bus (if opened) and dispose of the engine's connections."""
        if "events" in self.__dict__:
            self.events.close()
        self.engine.dispose()

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
