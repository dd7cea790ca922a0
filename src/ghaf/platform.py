"""The ``Platform``: settings plus the open backends, handed to every service call."""

from __future__ import annotations

from contextlib import suppress
from functools import cached_property, partial

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ghaf.artifacts.base import ArtifactStore
from ghaf.artifacts.store import ContentStore
from ghaf.backends import open_blob_store, open_event_bus, open_key_provider
from ghaf.errors import PermissionDeniedError
from ghaf.events.base import EventBus
from ghaf.metadata.engine import create_metadata_engine
from ghaf.metadata.platform_tables import HomeInfo
from ghaf.security.audit import AuditLog
from ghaf.security.authz import Authorizer
from ghaf.security.checkpoints import Checkpointer
from ghaf.security.identity import Actor, Credential, os_user
from ghaf.security.rbac import Policy, RbacAuthorizer
from ghaf.settings import GhafSettings
from ghaf.spine import Spine

IDENTITY_ACTION = "identity.assert"
"""The audit action of a refused identity (a retired setting, another OS account)."""


class Platform:
    """Open backends for one home; cheap to keep, close it when done."""

    def __init__(self, settings: GhafSettings, *, authorizer: Authorizer | None = None) -> None:
        self.settings = settings
        self.engine: Engine = create_metadata_engine(settings.resolved_metadata_url)
        copies = partial(  # audit checkpoints keep a write-once copy there
            open_blob_store,
            settings.resolved_artifact_url,
            region=settings.artifact_region,
            endpoint_url=settings.s3_endpoint_url,
        )
        self.checkpointer = Checkpointer(settings, self.engine, copies=copies)
        self.audit = AuditLog(self.checkpointer)
        self.spine = Spine(
            self.engine,
            authorizer
            or RbacAuthorizer(Policy.default(), self.read_session, owner=self.home_owner),
            self.audit,
        )
        self._owner: str | None = None

    @property
    def default_project(self) -> str:
        return self.settings.project

    def home_owner(self) -> str | None:
        """The OS account that owns this home (fixed at ``ghaf init``); None before init."""
        if self._owner is None:
            try:
                with self.read_session() as session:
                    self._owner = session.execute(select(HomeInfo.owner)).scalar_one_or_none()
            except SQLAlchemyError:  # not migrated yet: nobody owns it
                return None
        return self._owner

    def forget_owner(self) -> None:
        """Drop the cached owner (after ``ghaf admin transfer``)."""
        self._owner = None

    def admin(self) -> Actor:
        """The home's owner, proven by the OS account this process runs as.

        No setting or environment variable names this person: the account comes from the
        kernel (``geteuid``), and it must be the one ``ghaf init`` recorded. Anybody else
        acts with their own credential (``ghaf --token``, ``GHAF_TOKEN``).

        Raises:
            PermissionDeniedError: a retired identity setting is set, or this account is
                not the home's owner; either refusal is audited.
        """
        name, uid = os_user()
        actor = Actor(name, credential=Credential("home-owner", f"uid:{uid}"), source="local")
        self.check_not_asserted(actor)
        owner = self.home_owner()
        if owner is not None and owner != name:
            self.refuse_identity(
                actor,
                f"{name} is not the owner of this home ({owner})",
                hint="act with your own credential: ghaf --token TOKEN (or GHAF_TOKEN); "
                "the owner can hand the home over with `ghaf admin transfer`",
            )
        return actor

    def check_not_asserted(self, actor: Actor) -> None:
        """Refuse (and audit) any retired setting that tries to name who acts.

        Raises:
            PermissionDeniedError: ``security.admin_user`` or ``local_principals`` is set.
        """
        asserted = self.settings.asserted_identity
        if asserted:
            self.refuse_identity(
                actor,
                f"identity cannot be set: {', '.join(asserted)} was refused",
                hint="unset it; a second person acts with their own token "
                "(ghaf --token TOKEN, or GHAF_TOKEN)",
            )

    def refuse_identity(self, actor: Actor, headline: str, *, hint: str) -> None:
        """Audit an identity that was asserted rather than proven, then refuse it.

        Raises:
            PermissionDeniedError: always.
        """
        # A home not initialised yet has no audit log to write to.
        with suppress(SQLAlchemyError):
            self.spine.record_denied(
                actor, IDENTITY_ACTION, f"principal:{actor.name}", self.default_project, headline
            )
        raise PermissionDeniedError(headline, hint=hint)

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

            keys = open_key_provider(self.settings)
            return EncryptedArtifactStore(blobs, keys, project=self.settings.project)
        return ContentStore(blobs)

    @cached_property
    def events(self) -> EventBus:
        """The event bus."""
        return open_event_bus(self.settings.event_bus_url)

    def close(self) -> None:
        """Checkpoint what this process appended, close the event bus (if opened) and
        dispose of the engine's connections."""
        self.audit.close()
        if "events" in self.__dict__:
            self.events.close()
        self.engine.dispose()

    def in_project(self, project: str) -> Platform:
        """This platform acting in ``project``: the same open backends, another default
        project. A server answers every project with one set of connections; the view's
        ``close`` leaves them to this platform."""
        if project == self.default_project:
            return self
        views: dict[str, Platform] = self.__dict__.setdefault("_views", {})
        view = views.get(project)
        if view is None:  # one per project: a server asks on every write
            view = views[project] = _ProjectView(self, project)
        return view

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _ProjectView(Platform):
    """A :class:`Platform` whose default project is another; it owns no backend."""

    def __init__(self, parent: Platform, project: str) -> None:
        self.__dict__.update(
            {k: v for k, v in parent.__dict__.items() if k not in ("artifacts", "events", "_views")}
        )
        self.settings = parent.settings.model_copy(update={"project": project})
        self._parent = parent

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The parent's store; an encrypted one binds this project in what it seals."""
        store = self._parent.artifacts
        for_project = getattr(store, "for_project", None)
        return for_project(self.settings.project) if for_project is not None else store

    @property
    def events(self) -> EventBus:
        return self._parent.events

    def close(self) -> None:
        """Nothing to close: the backends are the parent platform's."""
