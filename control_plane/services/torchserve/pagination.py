"""TorchServe's list pagination (``limit``/``next_page_token``), shared by models and workflows."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def _as_int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def paginate(items: list[T], limit: str | None, token: str | None) -> tuple[list[T], str | None]:
    """One page of ``items`` (already sorted) and the next page token, TorchServe-style.

    ``limit`` defaults to 100 (values > 100 or < 0 become 100, non-integers the default);
    ``next_page_token`` is an offset (negatives and non-integers become 0). The token is
    returned whenever ``offset + limit <= total``.
    """
    size = _as_int(limit, 100)
    if size > 100 or size < 0:
        size = 100
    offset = max(_as_int(token, 0), 0)
    total = len(items)
    if offset > total:
        return [], None
    page = items[offset : min(offset + size, total)]
    next_token = str(offset + size) if offset + size <= total else None
    return page, next_token
