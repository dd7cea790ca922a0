"""The spine every state change goes through: authorize → act → audit, in one transaction.

A service function that writes is declared with :func:`governed`; inside it,
:func:`current_session` is the transaction to write in. The metadata engine refuses
any INSERT/UPDATE/DELETE on a connection the spine did not open
(:class:`~ghaf.errors.SpineBypassError`), so a write path cannot skip the audit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ghaf.errors import GhafError, PermissionDeniedError, PolicyViolationError, SpineBypassError
from ghaf.metadata.engine import GOVERNED
from ghaf.security.audit import AuditEntry, AuditLog, Outcome
from ghaf.security.authz import Authorizer
from ghaf.security.identity import Actor

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Operation:
    """The governed operation in progress: who, what, on what, and its transaction."""

    actor: Actor
    action: str
    resource: str
    project: str
    session: Session
    details: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[Operation | None] = ContextVar("ghaf_operation", default=None)
VIA_TOKEN = "via_token"  # noqa: S105  # nosec B105 - a key name, not a secret
"""Audit details key naming the API token (its public id) an operation was made with."""


def current_operation() -> Operation:
    """The operation this code runs inside.

    Raises:
        SpineBypassError: when called outside a governed operation.
    """
    operation = _current.get()
    if operation is None:
        raise SpineBypassError(
            "no governed operation is active",
            hint="call this from a function decorated with @governed(...)",
        )
    return operation


def current_session() -> Session:
    """The transaction of the governed operation this code runs inside."""
    return current_operation().session


class Spine:
    """Runs operations: authorize, act and audit in one metadata transaction."""

    def __init__(self, engine: Engine, authorizer: Authorizer, audit: AuditLog) -> None:
        self._engine = engine.execution_options(**{GOVERNED: True})
        self.authorizer = authorizer
        self.audit = audit

    @contextmanager
    def operation(
        self,
        actor: Actor,
        action: str,
        resource: str,
        project: str,
        details: dict[str, Any] | None = None,
    ) -> Iterator[Operation]:
        """Authorize, yield the transaction to act in, then audit and commit.

        A denied operation (refused by RBAC, or by a rule inside the act: four eyes, the
        release policy, residency) is audited as ``denied`` and a failed one as
        ``failed``, each in its own transaction after the act's work is rolled back.
        """
        outer = _current.get()
        if outer is not None:
            # A nested call is part of the outer operation: same transaction, one record.
            self.authorizer.authorize(actor, action, resource, project)
            outer.details.setdefault("includes", []).append(f"{action} {resource}")
            yield outer
            return
        try:
            self.authorizer.authorize(actor, action, resource, project)
        except PermissionDeniedError as exc:
            self._record(actor, action, resource, project, "denied", {"reason": exc.headline})
            raise
        with Session(self._engine, expire_on_commit=False) as session:
            operation = Operation(actor, action, resource, project, session, dict(details or {}))
            token = _current.set(operation)
            try:
                yield operation
                self._append(session, operation, "allowed")
                session.commit()
            except BaseException as exc:
                session.rollback()
                reason = exc.headline if isinstance(exc, GhafError) else type(exc).__name__
                failure = {**operation.details, "error": reason}
                # A rule that refused (RBAC, four eyes, the release policy, residency) is a
                # denial; anything else that went wrong is a failure.
                refused = isinstance(exc, PermissionDeniedError | PolicyViolationError)
                try:
                    self._record(
                        actor, action, resource, project, "denied" if refused else "failed", failure
                    )
                except Exception as audit_exc:  # noqa: BLE001 - keep the original error
                    exc.add_note(f"the failure could not be audited: {audit_exc!r}")
                raise
            finally:
                _current.reset(token)

    def record_denied(
        self, actor: Actor, action: str, resource: str, project: str, reason: str
    ) -> None:
        """Audit a refusal decided outside :meth:`operation` (authentication, reads)."""
        self._record(actor, action, resource, project, "denied", {"reason": reason})

    def _append(self, session: Session, op: Operation, outcome: Outcome) -> None:
        details = op.details
        credential = op.actor.credential
        if credential is not None and credential.kind == "token":
            # Which API token acted (as CloudTrail names the access key): the access
            # review's "last used" of each token is read from these records.
            details = {**details, VIA_TOKEN: credential.id}
        entry = AuditEntry(
            actor=op.actor.name,
            action=op.action,
            resource=op.resource,
            project=op.project,
            outcome=outcome,
            source=op.actor.source,
            request_id=op.actor.request_id,
            details=details,
        )
        self.audit.append(session, entry)

    def _record(
        self,
        actor: Actor,
        action: str,
        resource: str,
        project: str,
        outcome: Outcome,
        details: dict[str, Any],
    ) -> None:
        with Session(self._engine) as session:
            op = Operation(actor, action, resource, project, session, details)
            self._append(session, op, outcome)
            session.commit()


class HasSpine(Protocol):
    """What a governed function needs from its first argument (the ``Platform``)."""

    @property
    def spine(self) -> Spine: ...

    @property
    def default_project(self) -> str: ...


WRITE_OPERATIONS: dict[str, Callable[..., Any]] = {}
"""Every governed service function, by action name; tests exercise each one."""


def governed(
    action: str, resource: str, *, project: str | None = None
) -> Callable[[Callable[Concatenate[Any, Actor, P], R]], Callable[Concatenate[Any, Actor, P], R]]:
    """Declare a service function that changes state.

    Args:
        action: dotted action name, e.g. ``"project.create"``; registered once.
        resource: a ``str.format`` template over the function's arguments,
            e.g. ``"project:{name}"``.
        project: template for the project; default: the ``project`` argument
            when the function has one, else the platform's default project.

    The decorated function's first two parameters are the platform and the actor.
    """

    def decorate(
        fn: Callable[Concatenate[Any, Actor, P], R],
    ) -> Callable[Concatenate[Any, Actor, P], R]:
        if action in WRITE_OPERATIONS:
            raise ValueError(f"governed action {action!r} is registered twice")
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(platform: HasSpine, actor: Actor, /, *args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(platform, actor, *args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            resource_name = resource.format(**arguments)
            if project is not None:
                project_name = project.format(**arguments)
            else:
                project_name = str(arguments.get("project") or platform.default_project)
            with platform.spine.operation(actor, action, resource_name, project_name):
                return fn(platform, actor, *args, **kwargs)

        WRITE_OPERATIONS[action] = wrapper
        return wrapper

    return decorate
