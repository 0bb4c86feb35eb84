"""Per-request context (request id) kept in a contextvar set by middleware."""

from __future__ import annotations

import os
from contextvars import ContextVar

_request_id: ContextVar[str] = ContextVar("request_id", default="")


def get_request_id() -> str:
    """The current request's id ("" outside a request)."""
    return _request_id.get()


def new_request_id(incoming: str | None = None) -> str:
    """Set and return the request id (the caller's ``x-request-id`` when it sent one).

    A new id is 32 random hex digits, the shape of ``uuid4().hex`` without building a UUID.
    """
    value = incoming or os.urandom(16).hex()
    _request_id.set(value)
    return value
