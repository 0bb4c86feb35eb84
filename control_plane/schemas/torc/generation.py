"""Which torc client generation a request speaks (``reference/torc-current-api.md`` §6)."""

from __future__ import annotations

import re
from enum import StrEnum

# torc-client 0.8.0 sends ``OpenAPI-Generator/0.7.0/python``; 0.35.0 sends
# ``OpenAPI-Generator/0.21.0/python`` (the HTTP API version its spec was generated from).
_PYTHON_UA = re.compile(r"OpenAPI-Generator/v?(\d+)\.(\d+)[^/]*/python", re.IGNORECASE)
_FIRST_CURRENT_MINOR = 13
GENERATION_HEADER = "X-Torc-Api-Version"
"""Explicit opt-in: ``X-Torc-Api-Version: 0.21`` (or later) asks for the current shapes."""


class ApiGeneration(StrEnum):
    """The torc API generation a client was built for."""

    V0_12 = "0.12"
    """torc v0.12 (torc-client 0.8.0, the v0.12 Rust CLI): the default."""
    V0_21 = "0.21"
    """The current API (torc-client 0.35.0, HTTP API 0.21)."""


def _is_current(major: int, minor: int) -> bool:
    return major > 0 or minor >= _FIRST_CURRENT_MINOR


def detect_generation(user_agent: str | None, explicit: str | None = None) -> ApiGeneration:
    """The generation of a request: the explicit header wins, then the Python client's UA.

    Rust clients send ``OpenAPI-Generator/v0.7.0/rust`` in every version, so they get the
    v0.12 shapes unless they opt in with the header.
    """
    if explicit:
        match = re.match(r"^\s*v?(\d+)\.(\d+)", explicit)
        if match:
            current = _is_current(int(match.group(1)), int(match.group(2)))
            return ApiGeneration.V0_21 if current else ApiGeneration.V0_12
    match = _PYTHON_UA.search(user_agent or "")
    if match and _is_current(int(match.group(1)), int(match.group(2))):
        return ApiGeneration.V0_21
    return ApiGeneration.V0_12
