"""Shared Torc rules: memory/runtime grammars, timestamps, pagination, events.

Job statuses and their transitions are in ``state_machine.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import TorcEvent, TorcWorkflow
from control_plane.errors import NotFoundError, ValidationFailedError

MAX_LIMIT = 10000
CHUNK = 500

_MEMORY_RE = re.compile(r"^\s*(\d+)\s*([kmgtKMGT]?)\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION_RE = re.compile(
    r"^P(?!$)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_DURATION_FACTORS = (31557600, 2629800, 604800, 86400, 3600, 60, 1)


def parse_memory(value: str) -> int:
    """Bytes in a torc memory string (``512k``, ``1m``, ``128g``; no unit = bytes).

    Raises:
        ValidationFailedError: the string does not follow the grammar.
    """
    match = _MEMORY_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationFailedError(
            f"Invalid memory format '{value}'; expected an integer with an optional unit "
            "k, m, g or t (e.g. 512k, 128g)",
            code="invalid_memory",
            field="memory",
            value=value,
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def parse_runtime(value: str) -> float:
    """Seconds in an ISO 8601 duration (``PT30M``, ``PT8H``, ``P1DT12H``, ``P2W``).

    Raises:
        ValidationFailedError: the string is not an ISO 8601 duration.
    """
    match = _DURATION_RE.match(value.strip().upper()) if isinstance(value, str) else None
    if match is None:
        raise ValidationFailedError(
            f"Invalid runtime format '{value}'; expected an ISO 8601 duration such as PT30M, "
            "PT8H or P1DT12H",
            code="invalid_runtime",
            field="runtime",
            value=value,
        )
    return float(
        sum(float(g or 0) * f for g, f in zip(match.groups(), _DURATION_FACTORS, strict=True))
    )


def now_iso() -> str:
    """UTC now as torc writes it: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_ms() -> int:
    """Milliseconds since the epoch (event timestamps)."""
    return int(time.time() * 1000)


def get_workflow_or_raise(session: Session, workflow_id: int) -> TorcWorkflow:
    """The workflow row.

    Raises:
        NotFoundError: unknown id.
    """
    workflow = session.get(TorcWorkflow, workflow_id)
    if workflow is None:
        raise NotFoundError(f"Workflow not found with ID: {workflow_id}", code="workflow_not_found")
    return workflow


def check_limit(offset: int, limit: int | None) -> int:
    """The effective page size (default and maximum 10000).

    Raises:
        ValidationFailedError: negative offset or a limit outside 0..10000.
    """
    if offset < 0:
        raise ValidationFailedError(f"Got offset {offset}; it must be >= 0", code="invalid_offset")
    if limit is None:
        return MAX_LIMIT
    if limit < 0 or limit > MAX_LIMIT:
        raise ValidationFailedError(
            f"Got limit {limit}; it must be between 0 and {MAX_LIMIT}", code="invalid_limit"
        )
    return limit


def paginate(
    session: Session,
    query: Select[Any],
    *,
    offset: int,
    limit: int | None,
    sort_by: str | None,
    reverse_sort: bool,
    columns: Any,
) -> tuple[list[Any], int, int]:
    """Run a list query with torc's sort and page rules.

    Returns:
        (rows, total_count, effective limit).

    Raises:
        ValidationFailedError: an unknown ``sort_by`` column or a bad page.
    """
    limit = check_limit(offset, limit)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    key = sort_by or "id"
    column = columns.get(key) if hasattr(columns, "get") else None
    if column is None:
        raise ValidationFailedError(f"Got sort_by '{key}'; not a column", code="invalid_sort_by")
    order = column.desc() if reverse_sort else column.asc()
    rows = list(session.scalars(query.order_by(order, columns["id"]).offset(offset).limit(limit)))
    return rows, int(total), limit


def envelope(items: list[Any], offset: int, total: int, key: str) -> dict[str, Any]:
    """Torc's list envelope plus the seed's resource-named key."""
    return {
        "items": items,
        "offset": offset,
        "max_limit": MAX_LIMIT,
        "count": len(items),
        "total_count": total,
        "has_more": offset + len(items) < total,
        key: items,
    }


def add_events(session: Session, workflow_id: int, datas: Iterable[dict[str, Any]]) -> None:
    """Queue events (flushed with the caller's transaction) in one bulk insert."""
    stamp = now_ms()
    rows = [{"workflow_id": workflow_id, "timestamp": stamp, "data": d} for d in datas]
    if rows:
        session.execute(insert(TorcEvent), rows)


def job_event(job_id: int, name: str, old: str, new: str, **extra: Any) -> dict[str, Any]:
    """The event payload recorded for one job status transition."""
    return {
        "category": "job",
        "event_type": f"job_{new}",
        "job_id": job_id,
        "job_name": name,
        "from_status": old,
        "to_status": new,
        **extra,
    }


def chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    """Split ids into IN-clause sized chunks."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def drop_none(data: dict[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """Omit null fields, as torc's serde does, except those in ``keep``."""
    keep = set(keep)
    return {k: v for k, v in data.items() if v is not None or k in keep}
