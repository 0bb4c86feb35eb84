"""Plain SQL on the session's connection for the runner hot path.

ORM statement building cost more than the database work on the claim/complete path, so these
statements go straight to the driver (``:name`` parameters, rewritten for psycopg2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from control_plane.services.torc.common import now_ms
from control_plane.services.torc.txn import is_sqlite


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


class Sql:
    """Raw SQL on the session's connection (inside its transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = is_sqlite(session)
        self.conn = session.connection()

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else _pyformat(sql)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """Run a statement and fetch every row."""
        return list(self.conn.exec_driver_sql(self._sql(sql), params or {}).all())

    def run(self, sql: str, params: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Run a statement (``executemany`` for a list of parameter sets)."""
        if isinstance(params, list) and not params:
            return
        self.conn.exec_driver_sql(self._sql(sql), params)

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
