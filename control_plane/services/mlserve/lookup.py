"""Resolve ``{id}`` path parameters: a numeric id or the unique name."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.errors import BadRequestError, NotFoundError
from control_plane.schemas.common import fits_int64
from deployments.contracts.names import is_valid_name

T = TypeVar("T")


def check_name(name: str, what: str) -> str:
    """Validate a resource name (``^[A-Za-z0-9_.-]{1,128}$``, not made only of dots).

    Raises:
        BadRequestError: the name breaks the rule.
    """
    if not is_valid_name(name):
        raise BadRequestError(
            f"Got {name!r} for {what} name; it must match ^[A-Za-z0-9_.-]{{1,128}}$",
            code="invalid_name",
        )
    return name


def resolve(session: Session, table: type[T], ident: str | int, what: str) -> T:
    """The row whose id (if ``ident`` is numeric) or unique ``name`` equals ``ident``.

    Raises:
        NotFoundError: no such row.
    """
    text = str(ident).strip()
    row: Any = None
    # ASCII digits only: str.isdigit() is also true of superscripts and other scripts' digits,
    # which int() refuses or reads as a number the caller did not write; an id beyond 64 bits
    # names no row.
    if text.isascii() and text.isdigit() and fits_int64(int(text)):
        row = session.get(table, int(text))
    if row is None:
        row = session.scalar(select(table).where(table.name == text))  # type: ignore[attr-defined,arg-type]
    if row is None:
        raise NotFoundError(f"{what} '{text}' not found", code=f"{what}_not_found")
    return row  # type: ignore[no-any-return]
