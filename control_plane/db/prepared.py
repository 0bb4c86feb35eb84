"""Server-side prepared statements for hot raw-SQL paths on PostgreSQL (psycopg2).

psycopg2 sends every statement as text, so PostgreSQL parses and plans it on every call. For
the runner hot path (claim, complete) planning cost more than executing: 0.15-1.2 ms per
statement against 0.06-0.56 ms of execution (``EXPLAIN (ANALYZE, SUMMARY)`` on a 1,200-job
workflow, docs/benchmarks.md "Torc: prepared statements"). A statement text seen
``threshold`` times on a connection is ``PREPARE``d there once and sent as ``EXECUTE`` from
then on, as psycopg 3's ``prepare_threshold`` does.

Parameter types are declared from the Python values (``bool``, ``int`` -> ``bigint``,
``float``; ``str`` and ``None`` are left for the server to infer from their context, as it
does for the quoted literals psycopg2 would otherwise send), so the key of a prepared
statement is its text and its type signature. The first ``PREPARE`` of a key runs inside a
savepoint: a statement the server cannot prepare (a parameter whose type no context gives) is
remembered as such and sent as text, and the caller's transaction is not disturbed.

Prepared statements live as long as their connection; the bookkeeping sits in the pool
record's ``info``, which SQLAlchemy clears whenever it replaces the DBAPI connection. A
transaction-pooling PgBouncer between the platform and PostgreSQL hands connections around
per transaction, so prepared statements must be turned off there
(``db.prepare_threshold: 0``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg2  # type: ignore[import-untyped]
from sqlalchemy import Connection, CursorResult

# At most this many prepared statements per connection (IN lists of every length make new
# texts; past the cap they are sent as text).
MAX_PER_CONNECTION = 256
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_INFO_KEY = "mlserve_prepared"
# The engine's execution option that turns it on: how many uses on a connection before a
# statement is prepared (0: never).
PREPARE_THRESHOLD = "mlserve_prepare_threshold"


@dataclass
class _Converted:
    """A statement with ``:name`` parameters rewritten for ``PREPARE`` and for psycopg2."""

    numbered: str  # ``$1 ... $n``, for PREPARE (no % escaping: sent without parameters)
    names: tuple[str, ...]  # parameter names in ``$k`` order


@dataclass
class _Statements:
    """What one DBAPI connection has prepared."""

    connection_id: int
    seen: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)
    # key -> the EXECUTE to send (psycopg2 named parameters), or None: sent as text.
    names: dict[tuple[str, tuple[str, ...]], str | None] = field(default_factory=dict)


@lru_cache(maxsize=512)
def _convert(sql: str) -> _Converted:
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order[name] = len(order) + 1
        return f"${order[name]}"

    numbered = _PARAM.sub(number, sql)
    return _Converted(numbered, tuple(order))


def _pg_type(value: Any) -> str | None:
    """The declared type of a parameter; ``None`` when it cannot be prepared."""
    if value is None or isinstance(value, str):
        # As psycopg2's quoted literals are: typed by their context (a json column, a
        # varchar comparison); a context that gives no type needs a cast in the statement.
        return "unknown"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    return None


def _state(conn: Connection) -> _Statements:
    fairy = conn.connection
    dbapi = fairy.dbapi_connection
    state = fairy.info.get(_INFO_KEY)
    if not isinstance(state, _Statements) or state.connection_id != id(dbapi):
        state = _Statements(id(dbapi))
        fairy.info[_INFO_KEY] = state
    return state


class Preparer:
    """Runs ``:name`` statements on one connection, preparing the frequent ones."""

    def __init__(self, conn: Connection, threshold: int) -> None:
        self.conn = conn
        self.threshold = threshold

    def _prepared(self, sql: str, params: Mapping[str, Any]) -> str | None:
        """The ``EXECUTE`` of ``sql`` prepared on this connection, preparing it now if due."""
        if self.threshold <= 0:
            return None
        converted = _convert(sql)
        if any(n not in params for n in converted.names):
            return None
        types: list[str] = []
        for n in converted.names:
            declared = _pg_type(params[n])
            if declared is None:
                return None
            types.append(declared)
        key = (sql, tuple(types))
        state = _state(self.conn)
        if key in state.names:
            return state.names[key]
        count = state.seen.get(key, 0) + 1
        if count < self.threshold or len(state.names) >= MAX_PER_CONNECTION:
            state.seen[key] = count
            return None
        state.seen.pop(key, None)
        name = f"mlserve_{len(state.names) + 1}"
        declared = f" ({', '.join(types)})" if types else ""
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("SAVEPOINT mlserve_prepare")
            try:
                cursor.execute(f"PREPARE {name}{declared} AS {converted.numbered}")
            except psycopg2.Error:  # the server refused it: send it as text
                cursor.execute("ROLLBACK TO SAVEPOINT mlserve_prepare")
                state.names[key] = None
                return None
            finally:
                cursor.execute("RELEASE SAVEPOINT mlserve_prepare")
        finally:
            cursor.close()
        args = ", ".join(f"%({n})s" for n in converted.names)
        state.names[key] = call = f"EXECUTE {name} ({args})" if args else f"EXECUTE {name}"
        return call

    def execute(
        self, statements: str | Sequence[str], params: Mapping[str, Any]
    ) -> CursorResult[Any]:
        """Run one statement, or several in one round trip (the result is the last one's)."""
        parts = [statements] if isinstance(statements, str) else statements
        texts = [self._prepared(part, params) or pyformat(part) for part in parts]
        return self.conn.exec_driver_sql("; ".join(texts), dict(params))


@lru_cache(maxsize=512)
def pyformat(sql: str) -> str:
    """``:name`` -> ``%(name)s`` (psycopg2's named style), escaping literal ``%``."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
