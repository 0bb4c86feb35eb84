"""TorchServe-shaped domain errors: the right status class plus TorchServe's exception ``type``."""

from __future__ import annotations

from control_plane import errors
from deployments.contracts.archives import ArchiveError

_BY_STATUS: dict[int, type[errors.DomainError]] = {
    400: errors.BadRequestError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.TimeoutExceededError,
    409: errors.AlreadyExistsError,
    413: errors.PayloadTooLargeError,
    500: errors.ExecutionError,
    503: errors.UpstreamUnavailableError,
}


def ts_error(status: int, ts_type: str, message: str) -> errors.DomainError:
    """A domain error that renders as TorchServe's ``{code, type, message}`` with ``status``."""
    klass = _BY_STATUS.get(status, errors.ExecutionError)
    return klass(message, code=ts_type, ts_type=ts_type)


def from_archive(exc: ArchiveError) -> errors.DomainError:
    """Translate an archive/spec/DAG problem into the domain error TorchServe's status implies."""
    return ts_error(exc.status, exc.ts_type, exc.message)
