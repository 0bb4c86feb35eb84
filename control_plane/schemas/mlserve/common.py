"""Shared pieces of the MLServe wire contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    # SQLite drops the timezone of stored timestamps; they are all UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class BaseSchema(BaseModel):
    """Strict request/response base: unknown fields are rejected with a 400."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class StatusOk(BaseSchema):
    """``{"status": "ok"}``: the seed's answer to patch, delete and actions."""

    status: str = Field(default="ok", description="Always ``ok`` on success.")


class Created(BaseSchema):
    """``201 {"id": N}`` (seed "Response Now") plus ``status``."""

    id: int = Field(description="The new resource's id.")
    status: str = Field(default="ok", description="Always ``ok``.")


class MLServeError(BaseModel):
    """Every ``/api`` error: ``{"error": message, "code": stable_code, ...details}``."""

    # Details vary by error (a chunked-upload 409 carries ``offset`` and ``version``, a 413
    # ``limit``, a validation 400 ``errors``), so the body is open beyond its two fixed keys.
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="Human-readable message (a triton's own text on 502).")
    code: str = Field(description="Stable snake_case code, e.g. ``model_not_found``.")
