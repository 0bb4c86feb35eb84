"""Every migration branch upgrades, downgrades to nothing and upgrades again.

Run on SQLite and on PostgreSQL.
"""

import sqlalchemy as sa

from control_plane.db.base import Base
from control_plane.db.session import downgrade_database, make_engine, upgrade_database
from control_plane.db.tables import load_all_tables


def test_migrations_round_trip_and_match_the_tables(db_url):
    load_all_tables()
    engine = make_engine(db_url)
    try:
        upgrade_database(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        downgrade_database(engine, "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(engine)
        assert set(Base.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
