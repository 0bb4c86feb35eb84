"""Base schema of the Torc wire contracts: unknown fields are ignored, as torc's server does."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TorcSchema(BaseModel):
    """Request bodies of ``/torc-service/v1``.

    ``extra="ignore"`` (not the house ``forbid``): real torc clients send fields this server
    does not store (``id``, ``status_id``, ``schedule_compute_nodes``...), and the reference
    server ignores unknown fields rather than rejecting them.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)
