"""ConsoleSessionService on a real database: digests only, expiry, CSRF check, logout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from control_plane.db.session import make_engine, make_session_factory, upgrade_database
from control_plane.db.tables.console import ConsoleSession
from control_plane.services.console.sessions import ConsoleSessionService, console_user_id


def _factory(db_url):
    engine = make_engine(db_url)
    upgrade_database(engine)
    return engine, make_session_factory(engine)


def test_sessions_store_digests_expire_and_need_the_csrf_token(db_url):
    engine, factory = _factory(db_url)
    try:
        with factory() as session:
            service = ConsoleSessionService(session)
            live = service.create(7)
            expired = ConsoleSessionService(session, ttl=timedelta(seconds=-1)).create(8)
            stored = set(session.scalars(select(ConsoleSession.token_digest)))
            assert live.token not in stored  # only digests are kept
            assert service.get(live.token).user_id == 7
            assert service.get(expired.token) is None
            assert service.verify(live.token, "wrong") is None
            assert service.verify(live.token, live.csrf_token).user_id == 7
            cookie = {"cookie": f"other=1; cp_console={live.token}"}
            assert console_user_id(session, cookie) is None  # no token header
            assert console_user_id(session, {**cookie, "x-csrf-token": live.csrf_token}) == 7
            assert console_user_id(session, {"cookie": 'cp_console="bad'}) is None
            assert service.live_ids() == [7]
            ConsoleSessionService(session).create(9)  # a login purges expired rows
            assert len(set(session.scalars(select(ConsoleSession.token_digest)))) == 2
            service.end(live.token)
            assert service.get(live.token) is None
            assert service.end_all(9) == 1
            assert service.live_ids() == []
    finally:
        engine.dispose()
