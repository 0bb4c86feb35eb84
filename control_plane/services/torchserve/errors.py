"""TorchServe's errors as domain facts: a ``control_plane.errors`` class plus ``ts_type`` data.

``ts_type`` is the TorchServe exception name clients read in the ``type`` field; which HTTP
status each class gets is decided by the one table in ``control_plane/api/errors.py``.
"""

from __future__ import annotations

from control_plane import errors
from deployments.contracts.archives import (
    ArchiveError,
    ArchiveTooLargeError,
    InvalidArchiveError,
)

BAD_REQUEST = "BadRequestException"
CONFLICT = "ConflictStatusException"
INTERNAL = "InternalServerException"


def bad_request(message: str, ts_type: str = BAD_REQUEST) -> errors.BadRequestError:
    """The request is malformed or names something invalid."""
    return errors.BadRequestError(message, ts_type=ts_type)


def model_not_found(name: str) -> errors.NotFoundError:
    """TorchServe's unknown-model error."""
    return errors.NotFoundError(f"Model not found: {name}", ts_type="ModelNotFoundException")


def archive_not_found(message: str, *, workflow: bool) -> errors.NotFoundError:
    """A register url that names no archive TorchServe can use (not allowed, ``..``, absent)."""
    ts_type = "WorkflowNotFoundException" if workflow else "ModelNotFoundException"
    return errors.NotFoundError(message, ts_type=ts_type)


def version_not_found(message: str) -> errors.NotFoundError:
    """TorchServe's unknown-version error (its two wordings differ between endpoints)."""
    return errors.NotFoundError(message, ts_type="ModelVersionNotFoundException")


def workflow_not_found(name: str) -> errors.NotFoundError:
    """TorchServe's unknown-workflow error."""
    return errors.NotFoundError(f"Workflow not found: {name}", ts_type="WorkflowNotFoundException")


def already_registered(message: str) -> errors.AlreadyExistsError:
    """A model version or workflow of that name is registered."""
    return errors.AlreadyExistsError(message, ts_type=CONFLICT)


def start_failed(message: str, ts_type: str = INTERNAL) -> errors.StartFailedError:
    """Workers, dependencies or the Serve application did not come up."""
    return errors.StartFailedError(message, ts_type=ts_type)


def from_archive(exc: ArchiveError) -> errors.DomainError:
    """The domain fact behind an archive, spec or DAG problem.

    An unusable archive is an invalid artifact, one that expands too far is too large, and
    everything else (unsafe members, a name or runtime missing, an invalid DAG) is a bad request.
    """
    if isinstance(exc, InvalidArchiveError):
        return errors.InvalidArtifactError(exc.message, ts_type=exc.ts_type)
    if isinstance(exc, ArchiveTooLargeError):
        return errors.PayloadTooLargeError(exc.message, ts_type=exc.ts_type)
    return errors.BadRequestError(exc.message, ts_type=exc.ts_type)
