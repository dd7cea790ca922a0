"""The one table from Ghaf's errors to HTTP statuses, for every Ghaf HTTP server."""

from __future__ import annotations

from ghaf.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    ConfigError,
    GhafError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
    RequestTooLargeError,
    UserCodeError,
)

HTTP_STATUSES: tuple[tuple[type[GhafError], int], ...] = (
    (RequestTooLargeError, 413),
    (InvalidInputError, 400),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (PolicyViolationError, 403),
    (IntegrityError, 409),
    (BackendUnavailableError, 503),
    (ConfigError, 500),
    (MissingDependencyError, 500),
    (UserCodeError, 500),
)
"""First match wins (a subclass comes before its base); any other ``GhafError`` is a 500.

Authentication failures (no or bad credentials) are 401 and are decided by the
authentication layer (:mod:`ghaf.access.guard`), not here: the same
``PermissionDeniedError`` is a 403 once the caller is known."""


def http_status_for(error: GhafError) -> int:
    """The HTTP status a server answers with for ``error``."""
    for kind, status in HTTP_STATUSES:
        if isinstance(error, kind):
            return status
    return 500
