"""Domain errors: HTTP-free facts raised by services, mapped to status codes in api/errors.py."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every error a service raises on purpose.

    Attributes:
        code: stable snake_case identifier (``model_not_found``).
        message: human-readable text, safe to return to the caller.
        details: structured extras (safe to return).
    """

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.details = details


class NotFoundError(DomainError):
    """The named resource does not exist."""

    code = "not_found"


class AlreadyExistsError(DomainError):
    """A resource with the same unique key exists."""

    code = "already_exists"


class InvalidStateError(DomainError):
    """The resource is in a state that forbids the operation."""

    code = "invalid_state"


class ConflictError(InvalidStateError):
    """A concurrent or positional conflict (e.g. an upload offset mismatch)."""

    code = "conflict"


class PermissionDeniedError(DomainError):
    """The caller is known but not allowed."""

    code = "permission_denied"


class AuthenticationRequiredError(DomainError):
    """The caller presented no or invalid credentials."""

    code = "authentication_required"


class UpstreamUnavailableError(DomainError):
    """Ray, a Triton server or another dependency did not answer."""

    code = "upstream_unavailable"


class UpstreamError(DomainError):
    """A dependency answered with an error (its text is in the message)."""

    code = "upstream_error"


class ValidationFailedError(DomainError):
    """The request is well-formed but breaks a rule (Torc: 422)."""

    code = "validation_failed"


class BadRequestError(DomainError):
    """The request itself is malformed or names something invalid (400)."""

    code = "bad_request"


class PayloadTooLargeError(DomainError):
    """An upload or download exceeds the configured size limit."""

    code = "payload_too_large"


class ExecutionError(DomainError):
    """A model or workflow failed while running the request (500)."""

    code = "execution_error"


class TimeoutExceededError(DomainError):
    """The operation did not finish in time."""

    code = "timeout"


class InvalidArtifactError(DomainError):
    """A named archive or artifact is unusable (not an archive, a broken manifest or spec)."""

    code = "invalid_artifact"


class ArtifactExistsError(AlreadyExistsError):
    """A file the operation would create in the artifact store is already there."""

    code = "artifact_exists"


class StartFailedError(DomainError):
    """A model or workflow could not be started (Serve refused it, workers or deps failed)."""

    code = "start_failed"
