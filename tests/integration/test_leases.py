"""Leader election through the database, on SQLite and PostgreSQL."""

import time

from control_plane.db.session import make_engine, make_session_factory, upgrade_database
from control_plane.services.leases import release, try_acquire
from control_plane.services.reconciler import Reconciler
from control_plane.services.serve_apps import ServeAppService
from tests.fakes import FakeServeGateway, placeholder_spec


def _factory(db_url):
    engine = make_engine(db_url)
    upgrade_database(engine)
    return engine, make_session_factory(engine)


def test_one_holder_at_a_time_and_takeover_after_expiry(db_url):
    engine, factory = _factory(db_url)
    with factory() as a, factory() as b:
        assert try_acquire(a, "job", "replica-a", ttl_s=0.5)
        assert not try_acquire(b, "job", "replica-b", ttl_s=0.5)
        assert try_acquire(a, "job", "replica-a", ttl_s=0.5)  # renewal
        time.sleep(0.7)
        assert try_acquire(b, "job", "replica-b", ttl_s=30)
        assert not try_acquire(a, "job", "replica-a", ttl_s=30)
        release(b, "job", "replica-b")
        assert try_acquire(a, "job", "replica-a", ttl_s=30)
    engine.dispose()


def test_only_the_leader_reconciles(db_url):
    engine, factory = _factory(db_url)
    gateway = FakeServeGateway()
    with factory() as session:
        ServeAppService(session, gateway).put(
            placeholder_spec("p-v2-x", "/v2/models/x"), owner="v2", apply=False
        )
    first, second = Reconciler(factory, gateway, 5), Reconciler(factory, gateway, 5)
    assert first.run_once().applied == ["p-v2-x"]
    gateway.apps.clear()
    report = second.run_once()
    assert report.skipped
    assert not gateway.apps
    assert first.run_once().applied == ["p-v2-x"]
    engine.dispose()
