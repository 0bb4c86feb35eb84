"""Response envelopes that return the union of the seed's planned "Response" and "Response Now".

The seed documents two shapes for several endpoints (a flat object, and ``{"data": ...}``,
``{"id": N}`` or ``{"status": "ok"}``); the issue asks for both at once, so clients written
against either reading work. Each envelope is a schema in ``control_plane.schemas.mlserve``
(the object's fields plus ``data`` or ``status``), so OpenAPI documents what clients get.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from control_plane.schemas.mlserve.common import MLServeError
from control_plane.schemas.mlserve.models import ModelDetail, ModelDetailEnvelope

EnvelopeT = TypeVar("EnvelopeT", bound=BaseModel)


def _fields(obj: BaseModel) -> dict[str, Any]:
    # Field values as they are (nested schemas stay instances, so nothing is re-validated).
    return dict(obj)


def with_data(obj: BaseModel, envelope: type[EnvelopeT]) -> EnvelopeT:
    """A get: the object's fields at the top level and under ``data``."""
    return envelope(**_fields(obj), data=obj)


def with_status(obj: BaseModel, envelope: type[EnvelopeT]) -> EnvelopeT:
    """A patch: ``{"status": "ok"}`` plus the updated object's fields."""
    return envelope(**_fields(obj), status="ok")


def created(new_id: int, obj: BaseModel, envelope: type[EnvelopeT]) -> EnvelopeT:
    """A create: ``{"id": N, "status": "ok"}`` plus the new object's fields."""
    return envelope(**{**_fields(obj), "id": new_id}, status="ok")


def model_detail(detail: ModelDetail) -> ModelDetailEnvelope:
    """``GET /api/models/{id}``: seed fields at the top level, the reference detail in ``data``.

    Top level: ``versions`` are the version objects and ``config`` is ``{"host:port":
    metadata}`` (seed); ``data`` holds the detail with ``versions`` as numbers and ``config``
    as the store's Triton config (reference).
    """
    fields = {**_fields(detail), "versions": detail.version_details, "config": detail.servers}
    return ModelDetailEnvelope(**fields, data=detail)


# Every /api route fails with MLServe's error body; one entry per class of status (more
# specific codes are named on the routes that have them, e.g. 201/202 of a version upload).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": MLServeError,
        "description": "400 bad input (also request validation), 401 no or wrong credentials,"
        " 403 role not allowed, 404 unknown, 409 conflict, 413 upload too large.",
    },
    "5XX": {
        "model": MLServeError,
        "description": "502 a triton refused (its text is included), 503 a triton or Ray is"
        " unreachable.",
    },
}
