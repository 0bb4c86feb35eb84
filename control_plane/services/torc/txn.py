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

from sqlalchemy import case, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

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
    """Set ``column`` per id in a few ``UPDATE ... CASE`` statements (fast on both databases)."""
    ids = list(values)
    for part in chunks(ids):
        whens = {i: values[i] for i in part}
        session.execute(
            update(table)
            .where(table.id.in_(part))
            .values({column: case(whens, value=table.id)})
            .execution_options(synchronize_session=False)
        )


def bulk_status(session: Session, table: Any, ids_by_status: Mapping[str, list[int]], **extra: Any) -> None:
    """Set statuses in bulk, one ``UPDATE ... WHERE id IN`` per status and chunk."""
    for status, ids in ids_by_status.items():
        for part in chunks(sorted(ids)):
            session.execute(
                update(table)
                .where(table.id.in_(part))
                .values(status=status, **extra)
                .execution_options(synchronize_session=False)
            )
