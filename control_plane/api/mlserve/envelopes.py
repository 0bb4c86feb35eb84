"""Response envelopes that return the union of the seed's planned "Response" and "Response Now".

The seed documents two shapes for several endpoints (a flat object, and ``{"data": ...}``,
``{"id": N}`` or ``{"status": "ok"}``); the issue asks for both at once, so clients written
against either reading work.
"""

from __future__ import annotations

from typing import Any


def with_data(obj: dict[str, Any]) -> dict[str, Any]:
    """A get: the object's fields at the top level and under ``data``."""
    return {**obj, "data": obj}


def with_status(obj: dict[str, Any]) -> dict[str, Any]:
    """A patch: ``{"status": "ok"}`` plus the updated object's fields."""
    return {**obj, "status": "ok"}


def created(new_id: int, obj: dict[str, Any]) -> dict[str, Any]:
    """A create: ``{"id": N, "status": "ok"}`` plus the new object's fields."""
    return {**obj, "id": new_id, "status": "ok"}
