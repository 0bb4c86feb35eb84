"""SQLite engines: WAL with synchronous=NORMAL on every pooled connection."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from control_plane.db.session import make_engine, make_session_factory


def test_sqlite_connections_use_wal_normal_sync_foreign_keys_and_busy_timeout(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'cp.db'}")
    try:
        factory = make_session_factory(engine)
        with factory() as one, factory() as two:  # two pooled connections, both configured
            for session in (one, two):
                assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
                assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
                assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()
