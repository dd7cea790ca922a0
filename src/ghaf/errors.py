"""Ghaf's exception tree: one place, no web framework, a headline a person can act on.

::

    GhafError
    ├── ConfigError(ValueError)              bad settings or configuration files
    ├── NotFoundError(LookupError)           a named thing does not exist
    ├── AlreadyExistsError                   a unique name or version is taken
    ├── InvalidInputError(ValueError)        user input fails validation
    │   └── RequestTooLargeError             a request body or batch over a server's limit
    ├── PermissionDeniedError(PermissionError)  RBAC said no
    ├── PolicyViolationError                 residency, gates, four eyes
    ├── IntegrityError                       digest, signature or audit chain mismatch
    ├── BackendUnavailableError(ConnectionError)  a configured backend cannot be reached
    ├── MissingDependencyError(ImportError)  an optional extra is not installed
    ├── UserCodeError                        user train/predict/transform code raised
    └── SpineBypassError(RuntimeError)       a write tried to skip authorize → act → audit

Exit codes (CLI) and HTTP statuses are assigned at the edges, in one table each.
"""

from __future__ import annotations


class GhafError(Exception):
    """Base of every error Ghaf raises on purpose.

    ``headline`` is the one line shown to a person; ``hint`` says how to fix it.
    """

    def __init__(self, headline: str, *, hint: str | None = None) -> None:
        self.headline = headline
        self.hint = hint
        super().__init__(headline if hint is None else f"{headline} ({hint})")


class ConfigError(GhafError, ValueError):
    """A setting or configuration file has a value Ghaf cannot use."""


class NotFoundError(GhafError, LookupError):
    """A dataset, model, run, key or other named object does not exist."""


class AlreadyExistsError(GhafError):
    """A unique name or version is already taken."""


def name_taken(kind: str, name: str) -> AlreadyExistsError:
    """The one answer for a name that another project holds (names are unique in a home).

    As S3 answers for a bucket name, it says only that the name is taken: never whose it
    is or that it is another project's, and the same words from every service and door.
    """
    return AlreadyExistsError(
        f"{kind} name {name!r} is taken in this home; names are unique across projects: "
        "choose another"
    )


class InvalidInputError(GhafError, ValueError):
    """Input from a user or client does not pass validation."""


class RequestTooLargeError(InvalidInputError):
    """A request body or batch exceeds a server's configured limit (HTTP 413)."""


class PermissionDeniedError(GhafError, PermissionError):
    """The actor is not allowed to perform the operation."""


class PolicyViolationError(GhafError):
    """A residency, gate or approval policy forbids the operation."""


class IntegrityError(GhafError):
    """Stored bytes, a signature or the audit chain do not verify."""


class BackendUnavailableError(GhafError, ConnectionError):
    """A configured backend (database, object store, bus) cannot be reached."""


class MissingDependencyError(GhafError, ModuleNotFoundError):
    """An optional dependency is missing; the headline names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the optional package {package!r} is not installed",
            hint=f"pip install 'ghaf[{extra}]'",
        )
        self.package = package
        self.extra = extra


class UserCodeError(GhafError):
    """User-supplied code (a transform, trainer or predict function) raised."""


class SpineBypassError(GhafError, RuntimeError):
    """A metadata write happened outside a governed operation (a bug, not user error)."""
