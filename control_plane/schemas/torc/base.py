"""Base schemas of the Torc wire contracts: request and response bases, pages, errors."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class TorcSchema(BaseModel):
    """Request bodies of ``/torc-service/v1``.

    ``extra="ignore"`` (not the house ``forbid``): real torc clients send fields this server
    does not store (``id``, ``status_id``, ``schedule_compute_nodes``...), and the reference
    server ignores unknown fields rather than rejecting them.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)


class TorcRead(BaseModel):
    """Response bodies of ``/torc-service/v1``.

    Fields a response leaves out are omitted on the wire, not sent as null (the routes use
    ``response_model_exclude_unset``), as torc's serde does. ``extra="allow"``: a field the
    server adds later is passed through rather than dropped.
    """

    model_config = ConfigDict(extra="allow")


class Page(TorcRead, Generic[T]):
    """Torc's list envelope; each page model adds the seed's resource-named key."""

    items: list[T] = Field(description="The page of items.")
    offset: int = Field(description="Items skipped before this page.")
    max_limit: int = Field(description="The largest page size the server allows (10000).")
    count: int = Field(description="Items in this page.")
    total_count: int = Field(description="Items matching the query.")
    has_more: bool = Field(description="Whether items follow this page.")


class Count(TorcRead):
    """``DELETE /{resource}?workflow_id=``: how many items were deleted."""

    count: int = Field(description="Items deleted.")


class DeletedCount(TorcRead):
    """``DELETE /files|user_data?workflow_id=``: how many items were deleted.

    v0.12 answers ``deleted_count``; API 0.21's ``DeleteCountResponse`` requires ``count``.
    """

    deleted_count: int = Field(description="Items deleted (v0.12).")
    count: int = Field(description="Items deleted (API 0.21).")


class TorcErrorDetail(TorcRead):
    """The inner object of a Torc error; rule violations add fields such as ``field``."""

    message: str = Field(description="What went wrong, in torc's words.")
    code: str = Field(description="Stable snake_case code (``job_not_found``, ...).")
    field: str | None = Field(default=None, description="The offending field, when one is.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Malformed input: pydantic's errors (``loc``, ``msg``)."
    )


class TorcError(TorcRead):
    """Every Torc error response (404 unknown id, 422 rule violation or malformed input)."""

    error: TorcErrorDetail = Field(description="The error.")
