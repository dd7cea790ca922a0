"""The one table from Ghaf's errors to process exit codes."""

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
    UserCodeError,
)

EXIT_CODES: tuple[tuple[type[GhafError], int], ...] = (
    (ConfigError, 2),
    (InvalidInputError, 3),
    (NotFoundError, 4),
    (AlreadyExistsError, 5),
    (PermissionDeniedError, 6),
    (PolicyViolationError, 7),
    (IntegrityError, 8),
    (BackendUnavailableError, 9),
    (MissingDependencyError, 10),
    (UserCodeError, 11),
)
"""First match wins; any other ``GhafError`` exits 1."""


def exit_code_for(error: GhafError) -> int:
    """The exit code the CLI uses for ``error``."""
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return 1
