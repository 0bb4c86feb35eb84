"""Shared query parameters of the Torc list endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from control_plane.schemas.common import Id64, Int64


def page_params(
    offset: Annotated[Int64, Query(description="Items to skip.")] = 0,
    limit: Annotated[Int64 | None, Query(description="Page size (default and max 10000).")] = None,
    sort_by: Annotated[str | None, Query(description="Column to sort by (default id).")] = None,
    reverse_sort: Annotated[bool, Query(description="Sort descending.")] = False,
) -> dict[str, Any]:
    """Torc's pagination parameters as service keyword arguments."""
    return {"offset": offset, "limit": limit, "sort_by": sort_by, "reverse_sort": reverse_sort}


PageDep = Annotated[dict[str, Any], Depends(page_params)]
WorkflowIdQuery = Annotated[Id64, Query(description="The workflow (required).")]
