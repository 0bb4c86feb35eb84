"""Plain SQL on the session's connection for the runner hot path.

ORM statement building cost more than the database work on the claim/complete path, so these
statements go straight to the driver (``:name`` parameters, rewritten for psycopg2). On
PostgreSQL the frequent ones are prepared on their connection (``control_plane.db.prepared``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.orm import Session

from control_plane.db.prepared import PREPARE_THRESHOLD, Preparer, pyformat
from control_plane.services.torc.common import now_ms
from control_plane.services.torc.txn import is_sqlite


class Sql:
    """Raw SQL on the session's connection (inside its transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = is_sqlite(session)
        self.conn = session.connection()
        threshold = int(self.conn.get_execution_options().get(PREPARE_THRESHOLD, 0))
        self.preparer = None if self.sqlite else Preparer(self.conn, threshold)

    def _execute(self, sql: str | Sequence[str], params: dict[str, Any]) -> CursorResult[Any]:
        if self.preparer is not None:
            return self.preparer.execute(sql, params)
        if not isinstance(sql, str):
            raise ValueError("SQLite runs one statement at a time")
        return self.conn.exec_driver_sql(sql, params)

    def rows(self, sql: str | Sequence[str], params: dict[str, Any] | None = None) -> list[Any]:
        """Run a statement and fetch every row.

        Several statements (PostgreSQL only) go in one round trip; the rows are the last one's.
        """
        return list(self._execute(sql, params or {}).all())

    def run(self, sql: str | Sequence[str], params: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Run a statement (``executemany`` for a list of parameter sets)."""
        if not isinstance(params, list):
            self._execute(sql, params)
        elif not isinstance(sql, str):
            raise ValueError("executemany runs one statement")
        elif params:
            self.conn.exec_driver_sql(sql if self.sqlite else pyformat(sql), params)

    @staticmethod
    def expand(name: str, values: Iterable[Any], params: dict[str, Any]) -> str:
        """``:name0, :name1, ...`` for an IN list, adding the values to ``params``."""
        keys = []
        for i, value in enumerate(values):
            params[f"{name}{i}"] = value
            keys.append(f":{name}{i}")
        return ", ".join(keys) or "NULL"

    def events(self, workflow_id: int, datas: Sequence[dict[str, Any]]) -> None:
        """Insert events with one multi-row INSERT (psycopg2's executemany is a loop)."""
        if not datas:
            return
        params: dict[str, Any] = {"w": workflow_id, "t": now_ms()}
        values = []
        for i, data in enumerate(datas):
            params[f"d{i}"] = json.dumps(data)
            values.append(f"(:w, :t, :d{i})")
        self.run(
            f"INSERT INTO torc_events (workflow_id, timestamp, data) VALUES {', '.join(values)}",
            params,
        )
