"""Shared fixtures: settings, databases, the app with a fake gateway, the Ray Serve platform.

Databases are SQLite and PostgreSQL; there is one Ray Serve platform per test session.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.settings import Settings
from tests.fakes import FakeServeGateway

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_available() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session", name="postgres_admin_url")
def postgres_admin_url_fixture() -> str:
    if not _postgres_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; start it (see .ci/run)")
    return PG_ADMIN_URL


def _migrations_digest() -> str:
    """A digest of the migration scripts: a template database is only reused at the same head."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "control_plane" / "db" / "migrations").rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


_PG_TEMPLATE: str | None = None


def _pg_template(admin_url: str) -> str:
    """A PostgreSQL database migrated to head once per migration set, cloned per test.

    ``CREATE DATABASE ... TEMPLATE`` copies it in ~40 ms instead of ~300 ms of migrations;
    it is built under a temporary name and renamed when complete, so a half-built template is
    never used.
    """
    global _PG_TEMPLATE
    if _PG_TEMPLATE is not None:
        return _PG_TEMPLATE
    import sqlalchemy as sa

    from control_plane.db.session import upgrade_database

    name = f"cp_tmpl_{_migrations_digest()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
        if exists is None:
            building = create_pg_database(admin_url, migrated=False)
            engine = sa.create_engine(building)
            upgrade_database(engine)
            engine.dispose()
            with admin.connect() as conn:
                try:
                    conn.execute(
                        sa.text(f'ALTER DATABASE "{building.rsplit("/", 1)[1]}" RENAME TO "{name}"')
                    )
                except sa.exc.ProgrammingError:  # another session built it first
                    drop_pg_database(admin_url, building)
    finally:
        admin.dispose()
    _PG_TEMPLATE = name
    return name


def create_pg_database(admin_url: str, *, migrated: bool = False) -> str:
    """Create a database and return its URL: empty, or already at the migrations' head."""
    import sqlalchemy as sa

    template = f' TEMPLATE "{_pg_template(admin_url)}"' if migrated else ""
    name = f"cp_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{template}'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    """Drop a database made by create_pg_database."""
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session", name="sqlite_template")
def sqlite_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test gets a copy."""
    import sqlalchemy as sa

    from control_plane.db.session import upgrade_database

    path = tmp_path_factory.mktemp("db-template") / "platform.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], name="db_url"
)
def db_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test, on SQLite and on PostgreSQL, already at the migrations' head.

    The platform still runs its migrations at start (a no-op here); tests/integration's
    migration tests start from empty databases of their own.
    """
    if request.param == "sqlite":
        target = tmp_path / "platform.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    url = create_pg_database(admin, migrated=True)
    try:
        yield url
    finally:
        drop_pg_database(admin, url)


@pytest.fixture(name="settings")
def settings_fixture(tmp_path: Path, db_url: str) -> Settings:
    # no real apps gateway in this tier: routing writes need not wait for one (see docs/mlserve.md)
    return Settings(
        data_dir=str(tmp_path / "data"),
        db={"url": db_url},
        serving={"gateway_await_writes": False},
    )


@pytest.fixture(name="gateway")
def gateway_fixture() -> FakeServeGateway:
    return FakeServeGateway()


@pytest.fixture(name="client")
async def client_fixture(
    settings: Settings, gateway: FakeServeGateway
) -> AsyncIterator[httpx.AsyncClient]:
    """The control-plane app in-process (lifespan run) with the fake Serve gateway."""
    from control_plane.app import create_app

    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


class PlatformHandle:
    """A running platform: Ray cluster + Serve + the control-plane app (session-scoped)."""

    def __init__(self, url: str, port: int, data_dir: Path, args: dict[str, object]) -> None:
        self.url = url
        self.port = port
        self.host_port = f"127.0.0.1:{port}"
        self.data_dir = data_dir
        self.args = args

    def redeploy_control_plane(self) -> None:
        """Deploy the control-plane app again (what ``serve run`` does on start)."""
        from ray import serve

        from entrypoint.control_plane_app import build_control_plane

        serve.run(build_control_plane(dict(self.args)), name="control-plane", route_prefix="/")


# `make run`'s RAY_SERVE_HAPROXY_RETRY_ON (Makefile, configs/kuberay: the same value, checked by
# tests/unit/test_ingress_settings.py). Ray writes the value into its HAProxy config as it is:
# the second line holds each request whole before a replica is picked, which a replay needs.
HAPROXY_RETRY_ON = "conn-failure empty-response\n    option http-buffer-request"


def ray_test_env(fast_ingress: bool) -> dict[str, str]:
    """Environment for a Ray cluster started by tests (inherited by every Ray process)."""
    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0.5",
        # serve_config.yaml's gRPC app binds 8001 by default: a free port beside `make run`
        "CP_GRPC__PORT": str(free_port()),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    if fast_ingress:
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
        env["RAY_SERVE_HAPROXY_RETRY_ON"] = HAPROXY_RETRY_ON  # as `make run`
        # HAProxy's own listeners default to fixed ports (9101, 8404, 8500): pick free ones so
        # a test session can run beside `make run` or another session.
        env["RAY_SERVE_HAPROXY_METRICS_PORT"] = str(free_port())
        env["RAY_SERVE_HAPROXY_STATS_PORT"] = str(free_port())
        env["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"] = str(free_port())
    return env


@pytest.fixture(scope="session", name="platform")
def platform_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformHandle]:
    """One Ray cluster and one platform for the whole test session.

    ``PLATFORM_FAST_INGRESS=0`` runs the suite on Serve's default Python proxy instead of the
    HAProxy ingress that ``make run`` uses.
    """
    fast = os.environ.get("PLATFORM_FAST_INGRESS", "1") == "1"
    os.environ.update(ray_test_env(fast))
    import ray
    from ray import serve

    data_dir = tmp_path_factory.mktemp("platform")
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    port = _start_serve(serve, free_port())
    args: dict[str, object] = {
        "data_dir": str(data_dir),
        "public_url": f"http://127.0.0.1:{port}",
        "serving": {"reconcile_period_s": 2.0, "load_timeout_s": 120.0},
    }
    handle = PlatformHandle(f"http://127.0.0.1:{port}", port, data_dir, args)
    handle.redeploy_control_plane()
    _wait_http_ok(handle.url + "/healthz", timeout_s=60)
    global _SESSION_PLATFORM
    _SESSION_PLATFORM = handle
    try:
        yield handle
    finally:
        _SESSION_PLATFORM = None
        serve.shutdown()
        ray.shutdown()


_SESSION_PLATFORM: PlatformHandle | None = None


def _serve_apps() -> set[str]:
    from ray import serve

    return set(serve.status().applications)


@pytest.fixture(scope="module", autouse=True)
def _unload_what_the_module_loaded() -> Iterator[None]:
    """Each module leaves the session platform as it found it (see tests/platform_cleanup.py).

    Does nothing in a module that never touched the platform (the unit tier never starts Ray).
    """
    before = _serve_apps() if _SESSION_PLATFORM is not None else set()
    yield
    if _SESSION_PLATFORM is None:
        return
    from tests.platform_cleanup import unload_apps

    unload_apps(_SESSION_PLATFORM.url, _serve_apps() - before)


def _start_serve(serve: Any, port: int, attempts: int = 3) -> int:
    """``serve.start`` on ``port``, retried on a fresh port when the ingress dies while starting.

    On a loaded 2-core machine Serve's controller can give up on the HAProxy manager actor
    before it is up (``ActorDiedError: ... killed by ray.kill``); that is the test machine's
    load, not the platform under test, so the fixture tries again.
    """
    for attempt in range(1, attempts + 1):
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            return port
        except Exception:
            if attempt == attempts:
                raise
            serve.shutdown()
            port = free_port()
            time.sleep(2)
    raise AssertionError("unreachable")


def _wait_http_ok(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(url, timeout=5)
            if resp.status_code == 200:
                return
            last = resp.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout_s}s: {last}")


# The drill platform (its own Ray cluster, private PostgreSQL), shared by compat and reliability,
# and a real S3 endpoint (moto's server), imported here so every tier can use the fixtures.
from tests.drill_platform import (  # noqa: E402
    drill_platform_fixture,
    platform_in_mode_fixture,
    private_pg_fixture,
)
from tests.s3_server import s3_server_fixture  # noqa: E402

__all__ = [
    "drill_platform_fixture",
    "platform_in_mode_fixture",
    "private_pg_fixture",
    "s3_server_fixture",
]



def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the drill platform run in ``make drills``, not in ``make test``.

    The drill platform is a second ``serve run`` platform on a private PostgreSQL: starting it
    and its tests (delete in the other ingress mode, the database drill, the README curls)
    cost ~9 min of a fresh-clone run on 2 cores, which CI's time budget does not hold.
    """
    if os.environ.get("PLATFORM_DRILLS") == "1":
        return
    skip = pytest.mark.skip(reason="runs on the drill platform: make drills (PLATFORM_DRILLS=1)")
    for item in items:
        # the delete tests reach it by request.getfixturevalue, under the parameter id "drill"
        if "drill_platform" in getattr(item, "fixturenames", ()) or "[drill]" in item.nodeid:
            item.add_marker(skip)
