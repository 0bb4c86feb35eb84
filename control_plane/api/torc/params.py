"""Shared query parameters of the Torc list endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query


def page_params(
    offset: Annotated[int, Query(description="Items to skip.")] = 0,
    limit: Annotated[int | None, Query(description="Page size (default and max 10000).")] = None,
    sort_by: Annotated[str | None, Query(description="Column to sort by (default id).")] = None,
    reverse_sort: Annotated[bool, Query(description="Sort descending.")] = False,
) -> dict[str, Any]:
    """Torc's pagination parameters as service keyword arguments."""
    return {"offset": offset, "limit": limit, "sort_by": sort_by, "reverse_sort": reverse_sort}


PageDep = Annotated[dict[str, Any], Depends(page_params)]
WorkflowIdQuery = Annotated[int, Query(description="The workflow (required).")]
