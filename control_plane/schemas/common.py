"""Constrained types every surface shares: ids that fit the database, names by the one name rule.

Use them in route signatures (path and query parameters) and in request bodies, so a value the
database cannot hold is refused at the edge with a validation error naming the field, instead
of failing inside SQL. ``control_plane.api.errors`` still maps a database overflow that slips
past the edge to the same kind of 4xx (the safety net, not the rule).
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from pydantic import AfterValidator

from deployments.contracts.names import NAME_PATTERN, is_valid_name

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
"""Any integer a signed 64-bit column holds (SQLite INTEGER, PostgreSQL BIGINT)."""

Id64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]
"""A row id in a path, query or body. Negative ids are allowed (they name nothing: 404)."""


def fits_int64(value: int) -> bool:
    """True when ``value`` fits a signed 64-bit column."""
    return INT64_MIN <= value <= INT64_MAX


def _check_name(value: str) -> str:
    if not is_valid_name(value):
        raise ValueError(
            f"Got {value!r} for a name; it must match ^{NAME_PATTERN}$ and not be only dots"
        )
    return value


ResourceName = Annotated[str, AfterValidator(_check_name)]
"""A name by the one name rule of ``deployments.contracts.names`` (becomes a path and a route)."""

__all__ = ["INT64_MAX", "INT64_MIN", "Id64", "Int64", "ResourceName", "fits_int64"]
