"""Control-plane request path against a plain FastAPI + uvicorn route, side by side in one run.

Three parts, all measured in the same run:

1. **Through the Serve ingress** (the platform as ``make run`` deploys it: ``build_control_plane``
   on a local Ray cluster, HAProxy ingress unless ``FAST_INGRESS=0``): ``GET .../ping``,
   ``GET .../workflows/{id}``, ``GET /healthz`` and ``POST .../workflows`` (Torc, under
   ``/torc-service/v1``) at c=1/8/32 with wrk, on SQLite and PostgreSQL, with 1 and 2
   control-plane replicas; the baseline is a trivial ``GET /ping`` of a plain FastAPI app in
   its own uvicorn process.
2. **Per-stage cost in-process**: the same ASGI app called directly (no server, no Serve), so the
   table splits each request into framework, platform middleware, session/threadpool and service
   time, and the remainder is the HTTP server and the Serve ingress.
3. ``--profile``: a cProfile listing of the in-process app for one route.

Run: ``python -m bench.control_plane_bench`` (``--no-postgres``, ``--no-write``,
``--duration 5``). ``BENCH_DURATION_S`` sets the seconds per wrk cell (default 3, after 1 s of
warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section

ROOT = Path(__file__).resolve().parent.parent
TORC = "/torc-service/v1"
CONCURRENCY = (1, 8, 32)
JSON_HEADERS = {"Content-Type": "application/json"}
CREATE_BODY = json.dumps({"name": "bench", "user": "bench"}).encode()
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
ASGIApp = Callable[[Message, Receive, Callable[[Message], Awaitable[None]]], Awaitable[None]]


def plain_app() -> Any:
    """Uvicorn factory: the baseline, a plain FastAPI app with one trivial route."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass
class Case:
    """One request the benchmark sends."""

    label: str
    method: str
    path: str
    body: bytes = b""


def cases(workflow_id: int) -> list[Case]:
    """The platform requests of the issue's table."""
    return [
        Case("GET /torc-service/v1/ping", "GET", f"{TORC}/ping"),
        Case("GET /torc-service/v1/workflows/{id}", "GET", f"{TORC}/workflows/{workflow_id}"),
        Case("GET /healthz", "GET", "/healthz"),
        Case("POST /torc-service/v1/workflows", "POST", f"{TORC}/workflows", CREATE_BODY),
    ]


def _wrk(url: str, case: Case, connections: int, duration_s: int) -> LoadResult:
    return run_wrk(
        url + case.path,
        case.body,
        connections=connections,
        duration_s=duration_s,
        warmup_s=1,
        method=case.method,
        headers=JSON_HEADERS if case.body else None,
    )


class PlainServer:
    """The baseline app in its own uvicorn process (uvloop + httptools, as uvicorn picks)."""

    def __init__(self) -> None:
        from tests.conftest import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.control_plane_bench:plain_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
             "--no-access-log"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        _wait_ok(self.url + "/ping", 60)

    def stop(self) -> None:
        """Terminate the uvicorn process."""
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _wait_ok(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


class Platform:
    """A local Ray cluster with Serve; the control plane deployed as ``serve run`` deploys it."""

    def __init__(self, fast_ingress: bool, work: Path) -> None:
        from tests.conftest import free_port, ray_test_env

        os.environ.update(ray_test_env(fast_ingress))
        import ray
        from ray import serve

        self.work = work
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
                 _temp_dir=tempfile.mkdtemp(prefix="cpb-ray-", dir="/tmp"))
        # request_timeout_s as in serve_config.yaml, so the replica takes the same path. On a
        # loaded machine the HAProxy manager actor can die while starting: retry on a new port.
        for attempt in range(3):
            self.port = free_port()
            try:
                serve.start(http_options={"host": "127.0.0.1", "port": self.port,
                                          "request_timeout_s": 300})
                break
            except Exception:
                serve.shutdown()
                if attempt == 2:
                    raise
                time.sleep(2)
        self.url = f"http://127.0.0.1:{self.port}"

    def deploy(self, db_url: str, replicas: int, tag: str) -> None:
        """(Re)deploy the control-plane application with this database and replica count."""
        from ray import serve

        from entrypoint.control_plane_app import build_control_plane

        args = {
            "data_dir": str(self.work / tag),
            "public_url": self.url,
            "num_replicas": replicas,
            "db": {"url": db_url},
        }
        serve.run(build_control_plane(args), name="control-plane", route_prefix="/")
        _wait_ok(self.url + "/healthz", 120)
        # Every replica must answer before measuring (HAProxy adds backends as they come up).
        time.sleep(2.0)

    def stop(self) -> None:
        """Shut Serve and Ray down."""
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def _create_workflow(url: str) -> int:
    resp = httpx.post(url + f"{TORC}/workflows", content=CREATE_BODY, headers=JSON_HEADERS)
    resp.raise_for_status()
    return int(resp.json()["id"])


# ---- in-process stages -------------------------------------------------------------------


async def _call(app: ASGIApp, method: str, path: str, body: bytes = b"") -> list[Message]:
    scope: Message = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # a real server would report a disconnect here
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _per_request_us(app: ASGIApp, case: Case, n: int) -> tuple[float, float]:
    """Wall and CPU (all threads of this process) microseconds per request."""
    for _ in range(min(100, n)):
        await _call(app, case.method, case.path, case.body)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        sent = await _call(app, case.method, case.path, case.body)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if sent[0]["status"] >= 300:
        raise RuntimeError(f"{case.label}: status {sent[0]['status']}")
    return elapsed / n * 1e6, cpu / n * 1e6


def _service_get_us(session_factory: Any, workflow_id: int, n: int) -> tuple[float, float]:
    """The service call alone: session, query, wire dict (what the route's thread runs)."""
    from control_plane.schemas.torc.generation import ApiGeneration
    from control_plane.services.torc import WorkflowService

    generation = ApiGeneration.V0_12
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        with session_factory() as session:
            WorkflowService(session, generation).get(workflow_id)
    return (time.perf_counter() - started) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def in_process_stages(n: int = 1000, profile: str | None = None) -> dict[str, tuple[float, float]]:
    """Microseconds per request of each stage, the ASGI apps called directly on SQLite."""
    from control_plane.app import create_app
    from control_plane.settings import Settings
    from tests.fakes import FakeServeGateway

    work = Path(tempfile.mkdtemp(prefix="cpb-stages-"))
    settings = Settings(data_dir=str(work), db={"url": f"sqlite:///{work / 'cp.db'}"})
    app = create_app(settings, gateway_factory=FakeServeGateway, run_startup_hooks=False)
    plain = plain_app()
    out: dict[str, tuple[float, float]] = {}

    async def run() -> None:
        async with app.router.lifespan_context(app):
            sent = await _call(app, "POST", f"{TORC}/workflows", CREATE_BODY)
            workflow_id = int(json.loads(sent[1]["body"])["id"])
            out["plain FastAPI GET /ping"] = await _per_request_us(
                plain, Case("plain", "GET", "/ping"), n
            )
            for case in cases(workflow_id):
                out[case.label] = await _per_request_us(app, case, n // 2 if case.body else n)
            out["service alone: WorkflowService.get (session + query)"] = await asyncio.to_thread(
                _service_get_us, app.state.session_factory, workflow_id, n
            )
            if profile:
                chosen = next(c for c in cases(workflow_id) if profile in c.path)
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(n):
                    await _call(app, chosen.method, chosen.path, chosen.body)
                profiler.disable()
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
                print(text.getvalue())

    asyncio.run(run())
    return out


# ---- the run -------------------------------------------------------------------------------


def _ratio(new: LoadResult, base: LoadResult) -> str:
    return f"{new.rps / base.rps:.2f}x" if base.rps else "n/a"


def _cell(result: LoadResult) -> str:
    errors = f", {result.errors} err" if result.errors else ""
    return f"{result.rps:,.0f} rps, p50 {result.p50_ms:.2f} ms{errors}"


def main(argv: list[str] | None = None) -> None:
    """Measure every table and print it (and record it in docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(prog="python -m bench.control_plane_bench")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION_S", 3)))
    parser.add_argument(
        "--profile", default=None, help="cProfile one route in-process: ping|workflows|healthz"
    )
    parser.add_argument("--stages-only", action="store_true", help="only the in-process table")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database

    load_before = os.getloadavg()[0]
    stages = in_process_stages(profile=args.profile)
    stage_rows = [[label, f"{wall:,.0f}", f"{cpu:,.0f}"] for label, (wall, cpu) in stages.items()]
    stage_header = ["in-process (ASGI call, no server)", "wall us/request", "CPU us/request"]
    print(table(stage_rows, stage_header), flush=True)
    if args.stages_only:
        return
    require_wrk()
    fast = os.environ.get("FAST_INGRESS", "1") == "1"
    work = Path(tempfile.mkdtemp(prefix="cpb-"))
    plain = PlainServer()
    baseline: dict[int, LoadResult] = {}
    ping = Case("plain", "GET", "/ping")
    for c in CONCURRENCY:
        baseline[c] = _wrk(plain.url, ping, c, args.duration)
        print(f"plain FastAPI c={c}: {_cell(baseline[c])}", flush=True)
    plain.stop()
    setups: list[tuple[str, str, int]] = [("SQLite", f"sqlite:///{work / 'cp.db'}", 1)]
    pg_url = None
    if not args.no_postgres:
        pg_url = create_pg_database(PG_ADMIN_URL)
        setups += [("PostgreSQL", pg_url, 1), ("PostgreSQL", pg_url, 2)]
    results: dict[tuple[str, int], dict[str, dict[int, LoadResult]]] = {}
    platform = Platform(fast, work)
    try:
        for db_name, url, replicas in setups:
            platform.deploy(url, replicas, f"{db_name.lower()}-{replicas}")
            workflow_id = _create_workflow(platform.url)
            cells: dict[str, dict[int, LoadResult]] = {}
            for case in cases(workflow_id):
                cells[case.label] = {}
                for c in CONCURRENCY:
                    cells[case.label][c] = res = _wrk(platform.url, case, c, args.duration)
                    print(f"{db_name} x{replicas} {case.label} c={c}: {_cell(res)}", flush=True)
            results[(db_name, replicas)] = cells
    finally:
        platform.stop()
        if pg_url:
            drop_pg_database(PG_ADMIN_URL, pg_url)
    load_after = os.getloadavg()[0]

    header = ["request", *[f"c={c}" for c in CONCURRENCY]]
    rows = [["plain FastAPI + uvicorn `GET /ping`", *[_cell(baseline[c]) for c in CONCURRENCY]]]
    ratio_rows = []
    for (db_name, replicas), cells in results.items():
        for label, by_c in cells.items():
            rows.append([f"{db_name}, {replicas} replica(s): `{label}`",
                         *[_cell(by_c[c]) for c in CONCURRENCY]])
            ratio_rows.append([f"{db_name}, {replicas} replica(s): `{label}`",
                               *[_ratio(by_c[c], baseline[c]) for c in CONCURRENCY]])
    scale_rows = []
    if ("PostgreSQL", 2) in results:
        one, two = results[("PostgreSQL", 1)], results[("PostgreSQL", 2)]
        for label in one:
            scale_rows.append(
                [f"`{label}`", *[_ratio(two[label][c], one[label][c]) for c in CONCURRENCY]]
            )
    mode = "HAProxy ingress (FAST_INGRESS=1)" if fast else "Serve's Python proxy (FAST_INGRESS=0)"
    parts = [
        f"`python -m bench.control_plane_bench` — {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} before / {load_after:.1f} after; "
        f"{mode}; wrk 1 thread, {args.duration} s a cell after 1 s of warm-up.",
        "In-process cost per request (the ASGI app called directly on SQLite, no server):",
        table(stage_rows, stage_header),
        "Through the Serve ingress:",
        table(rows, header),
        "Ratio to the plain FastAPI route (same concurrency):",
        table(ratio_rows, header),
    ]
    if scale_rows:
        parts += ["2 replicas vs 1 (PostgreSQL, req/s):", table(scale_rows, header)]
    text = "\n\n".join(parts)
    print(text)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Control plane (latest run)", text)


if __name__ == "__main__":
    main()
