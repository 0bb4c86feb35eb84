"""A second platform under ``serve run`` on a private PostgreSQL instance (session-scoped).

The session platform (tests/conftest.py) runs in one ingress mode; the drill platform runs in
the other (``FAST_INGRESS`` flipped), so delete tests cover both modes. Fault drills
(tests/reliability) kill its processes and restart its database, which must never touch the
machine's shared PostgreSQL or the session platform other tests use; the README's own curl
examples (tests/compat/test_readme_curls.py) run against it with the names they spell.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, free_port, ray_test_env
from tests.serve_run import start_serve_run, stop_serve_run

_INGRESS_VARS = (
    "RAY_SERVE_ENABLE_HA_PROXY",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED",
    "RAY_SERVE_HAPROXY_",
    "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
)


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """Initdb and postgres refuse to run as root: run them as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary directory, on its own port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                          "-A", "trust", "--no-sync"]),
            check=True, capture_output=True,
        )

    def start(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                          "-w", "-t", "60", "-o",
                          f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                          "-c fsync=off", "start"]),
            check=True, capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=False, capture_output=True,
        )


class DrillPlatform:
    """``serve run`` of serve_config.yaml with its own Ray cluster, port and database."""

    def __init__(self, root: Path, pg: PrivatePostgres | SqliteDb, fast_ingress: bool) -> None:
        self.root = root
        self.pg = pg
        self.fast_ingress = fast_ingress
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "var"
        config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
        config["http_options"]["port"] = self.port
        # the control plane only: the gRPC app would bind Triton's fixed port 8001
        config["applications"] = [config["applications"][0]]
        config["applications"][0]["args"].update({
            "data_dir": str(self.data_dir),
            "public_url": self.url,
            "db": {"url": pg.url},
            "serving": {"reconcile_period_s": 2.0, "load_timeout_s": 120.0},
        })
        self.config = root / "serve_config.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rdr-", dir="/tmp"))  # short AF_UNIX paths
        # The session platform's fixture put its ingress settings (HAProxy on, its HAProxy ports)
        # into os.environ: inherited, they would run this platform in the same mode on the same
        # HAProxy ports (a reload then dies on "Address already in use").
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_INGRESS_VARS)}
        self.env = {**inherited, **ray_test_env(fast_ingress), "RAY_TMPDIR": str(self.ray_tmp)}
        self.env.pop("RAY_ADDRESS", None)
        self.log = root / "serve.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start_serve_run(self.config, self.env, self.log)
        deadline = time.monotonic() + 300  # a loaded 2-core machine: minutes, slow answers
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve run exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=15).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"{self.url}/healthz not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                stop_serve_run(self.proc)
            with contextlib.suppress(ProcessLookupError):  # Ray workers left by a failed start
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def pids(self, pattern: str) -> list[int]:
        """PIDs of this platform's Ray workers whose command line contains ``pattern``."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if pattern in cmdline and f"RAY_TMPDIR={self.ray_tmp}".encode() in environ:
                found.append(int(proc.name))
        return found

    def power_loss(self) -> int:
        """SIGKILL every process of this platform at once, as a power loss would; returns how many.

        ``serve run``'s process group and every process carrying this platform's
        ``RAY_TMPDIR`` (Ray's daemons, workers, the jobs they started). The next ``start()``
        runs a new Ray cluster on the same database and data directory.
        """
        pids = set(self.pids(""))
        if self.proc is not None:
            pids.add(self.proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
        wait_until(lambda: not self.pids(""), 30, "every process of the platform gone")
        shutil.rmtree(self.ray_tmp, ignore_errors=True)
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="rdr-", dir="/tmp"))
        self.env["RAY_TMPDIR"] = str(self.ray_tmp)
        return len(pids)

    def kill(self, pattern: str) -> int:
        """SIGKILL exactly one worker of this platform matching ``pattern``; returns its PID."""
        pids = self.pids(pattern)
        assert pids, f"no process of this platform matches {pattern!r}"
        os.kill(pids[0], signal.SIGKILL)
        return pids[0]


@pytest.fixture(scope="session", name="private_pg")
def private_pg_fixture() -> Iterator[PrivatePostgres]:
    # not under pytest's tmp dir: its parents are private to root, the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="drill-pg-", dir="/tmp"))
    pg = PrivatePostgres(root)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", name="drill_platform")
def drill_platform_fixture(
    tmp_path_factory: pytest.TempPathFactory, private_pg: PrivatePostgres
) -> Iterator[DrillPlatform]:
    """The platform the drills may break, in the ingress mode the session platform does not use."""
    session_fast = os.environ.get("PLATFORM_FAST_INGRESS", "1") == "1"
    platform = DrillPlatform(tmp_path_factory.mktemp("drill"), private_pg, not session_fast)
    try:  # a start that fails half-way still stops what it started
        platform.start()
        yield platform
    finally:
        platform.stop()


@dataclasses.dataclass(frozen=True)
class SqliteDb:
    """A database for a second drill platform (the private PostgreSQL is the first one's)."""

    url: str


@pytest.fixture(scope="session", name="platform_in_mode")
def platform_in_mode_fixture(
    tmp_path_factory: pytest.TempPathFactory, drill_platform: DrillPlatform
) -> Iterator[Callable[[bool], DrillPlatform]]:
    """``get(fast_ingress)``: the drill platform in that ingress mode.

    The drill platform itself where it runs in that mode; otherwise one more platform (its
    own Ray cluster, on SQLite), started on first use and stopped with the session.
    """
    others: dict[bool, DrillPlatform] = {}

    def get(fast_ingress: bool) -> DrillPlatform:
        if drill_platform.fast_ingress == fast_ingress:
            return drill_platform
        if fast_ingress not in others:
            root = tmp_path_factory.mktemp("drill-other-mode")
            other = DrillPlatform(root, SqliteDb(f"sqlite:///{root}/platform.db"), fast_ingress)
            others[fast_ingress] = other
            other.start()
        return others[fast_ingress]

    try:
        yield get
    finally:
        for other in others.values():
            other.stop()


def wait_until(predicate, timeout_s: float, what: str, period_s: float = 0.3):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after a while."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(period_s)
    raise AssertionError(f"{what} not reached after {timeout_s}s (last: {last!r})")
