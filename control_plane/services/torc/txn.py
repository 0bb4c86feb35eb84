"""Write transactions that are safe under concurrency on SQLite and PostgreSQL.

SQLite: ``BEGIN IMMEDIATE`` takes the single writer lock up front (waiting up to the busy
timeout), so a transaction never reads a snapshot that a concurrent writer invalidates.
PostgreSQL: callers lock rows (``FOR UPDATE`` / ``SKIP LOCKED``); ``run_retrying`` retries the
rare deadlock or serialization failure.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from control_plane.schemas.torc.status import JobStatus
from control_plane.services.torc.common import chunks

logger = logging.getLogger(__name__)
T = TypeVar("T")
_RETRYABLE = ("database is locked", "deadlock detected", "could not serialize", "busy")


def is_sqlite(session: Session) -> bool:
    """True when the session talks to SQLite."""
    return session.get_bind().dialect.name == "sqlite"


def begin_write(session: Session) -> None:
    """Start the transaction as a writer (SQLite ``BEGIN IMMEDIATE``; no-op on PostgreSQL)."""
    if not is_sqlite(session):
        return
    raw = session.connection().connection.driver_connection
    if raw is not None and not raw.in_transaction:
        raw.execute("BEGIN IMMEDIATE")


def run_retrying(session: Session, work: Callable[[], T], attempts: int = 20) -> T:
    """Run ``work`` (which commits), retrying on lock timeouts and deadlocks."""
    for attempt in range(attempts):
        try:
            return work()
        except (OperationalError, DBAPIError) as exc:
            session.rollback()
            text = str(exc.orig if exc.orig is not None else exc).lower()
            if attempt == attempts - 1 or not any(s in text for s in _RETRYABLE):
                raise
            logger.info("retrying a torc write after %s", text[:80])
            time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())
    raise AssertionError("unreachable")


def bulk_set(session: Session, table: Any, column: str, values: Mapping[int, Any]) -> None:
    """Set ``column`` per id in bulk.

    ``executemany`` on SQLite (in-process, fast), an
    ``UPDATE ... FROM (VALUES ...)`` join per chunk on PostgreSQL (one round trip each).
    """
    if not values:
        return
    name = table.__tablename__
    conn = session.connection()
    if is_sqlite(session):
        conn.exec_driver_sql(
            f"UPDATE {name} SET {column} = ? WHERE id = ?", [(v, k) for k, v in values.items()]
        )
        return
    items = list(values.items())
    for start in range(0, len(items), 2000):
        part = items[start : start + 2000]
        rows = ", ".join(["(%s, %s)"] * len(part))
        flat = [x for pair in part for x in pair]
        conn.exec_driver_sql(
            f"UPDATE {name} SET {column} = v.val FROM (VALUES {rows}) AS v(id, val) "
            f"WHERE {name}.id = v.id",
            tuple(flat),
        )


def bulk_status(
    session: Session, table: Any, ids_by_status: Mapping[JobStatus, list[int]], **extra: Any
) -> None:
    """Set statuses in bulk, one ``UPDATE ... WHERE id IN`` per status and chunk."""
    for status, ids in ids_by_status.items():
        for part in chunks(sorted(ids)):
            session.execute(
                update(table)
                .where(table.id.in_(part))
                .values(status=status, **extra)
                .execution_options(synchronize_session=False)
            )
