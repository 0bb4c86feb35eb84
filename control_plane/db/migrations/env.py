"""Alembic environment: runs on the connection handed in by db.session."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from control_plane.db.base import Base
from control_plane.db.tables import load_all_tables

load_all_tables()
target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    """Run migrations on the connection passed through ``config.attributes``."""
    connection = config.attributes.get("connection")
    if connection is None:
        engine = config.attributes["engine"]
        with engine.begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
