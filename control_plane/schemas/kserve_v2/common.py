"""Shared pieces of the v2 wire contracts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class V2Schema(BaseModel):
    """Base of the v2 bodies: exactly Triton's keys (subclasses open up where Triton does)."""

    model_config = ConfigDict(extra="forbid")


class V2Error(V2Schema):
    """Every v2 error body: ``{"error": message}`` (what tritonclient raises as ``message()``)."""

    error: str = Field(description="Triton's message, e.g. 'Request for unknown model: ...'.")
