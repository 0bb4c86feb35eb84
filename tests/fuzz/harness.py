"""Schemathesis over the whole OpenAPI document of the control plane, on SQLite.

The app runs under uvicorn in a thread (real HTTP, real threadpool) with the fake Serve gateway of
the integration tier; an ASGI wrapper records the status of every request by route template, so
the coverage measure ("operations that answered something other than 404") is the server's view.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from control_plane.settings import Settings
from tests.fakes import FakeServeGateway

ADMIN = ("admin", "admin")
METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class Exchange:
    """One request the server answered."""

    method: str
    path: str
    status: int
    body: bytes


@dataclass
class Recorder:
    """Statuses by OpenAPI operation, and every 5xx in full."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    server_errors: list[Exchange] = field(default_factory=list)
    # Requests under the route prefix of an applied model/workflow application: Serve routes
    # those to the application's replicas, so the control plane's answer is not what clients get.
    routed_away: Counter[str] = field(default_factory=Counter)
    route_prefixes: Any = None  # () -> list[str], the fake gateway's applied routes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _routed_away(self, path: str) -> bool:
        prefixes = self.route_prefixes() if self.route_prefixes else []
        return any(p not in ("", "/") and (path == p or path.startswith(p + "/")) for p in prefixes)

    def record(self, operation: str, exchange: Exchange) -> None:
        with self.lock:
            if self._routed_away(exchange.path.split("?", 1)[0]):
                self.routed_away[operation] += 1
                return
            self.statuses[operation][exchange.status] += 1
            if exchange.status >= 500:
                self.server_errors.append(exchange)


class RecordingApp:
    """ASGI wrapper: the documented operation of each request and the status it got."""

    def __init__(self, app: Any, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder
        self._templates: list[tuple[int, re.Pattern[str], str, set[str]]] | None = None

    def _operation(self, scope: dict[str, Any]) -> str:
        if self._templates is None:
            templates = []
            for path, item in self.app.openapi()["paths"].items():
                params = path.count("{")
                pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$")
                templates.append((params, pattern, path, {m.upper() for m in item}))
            self._templates = sorted(templates, key=lambda t: t[0])
        method = scope["method"]
        for _, pattern, path, methods in self._templates:
            if method in methods and pattern.match(scope["path"]):
                return f"{method} {path}"
        return f"{method} <undocumented>"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 500 and len(body) < 4096:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            query = scope["query_string"].decode("latin-1")
            path = scope["path"] + (f"?{query}" if query else "")
            self.recorder.record(
                self._operation(scope), Exchange(scope["method"], path, status, bytes(body))
            )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Target:
    """The running app under test."""

    url: str
    recorder: Recorder
    settings: Settings
    gateway: FakeServeGateway


@contextmanager
def running_app(data_dir: Path) -> Iterator[Target]:
    """The control plane under uvicorn on a free loopback port, SQLite, the fake Serve gateway."""
    import uvicorn

    from control_plane.app import create_app

    settings = Settings(
        data_dir=str(data_dir),
        db={"url": f"sqlite:///{data_dir / 'platform.db'}"},
        # Register URLs are downloaded: keep the fuzzer off the network (store names still work).
        torchserve={"allowed_urls": [r"file://.*"]},
        # The fake gateway enforces nothing: waiting for gateway replicas after each MLServe
        # write (0.5 s) would only slow the campaign.
        serving={"gateway_await_writes": False},
    )
    gateway = FakeServeGateway()
    app = create_app(settings, gateway_factory=lambda: gateway)
    recorder = Recorder(
        route_prefixes=lambda: [a.route_prefix or "" for a in list(gateway.apps.values())]
    )
    port = _free_port()
    config = uvicorn.Config(
        RecordingApp(app, recorder), host="127.0.0.1", port=port, log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fuzz-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("the control plane did not start under uvicorn")
    try:
        yield Target(url, recorder, settings, gateway)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class FuzzReport:
    """What one run found: per-operation statuses, 5xx, failed checks and coverage."""

    operations: list[str]
    statuses: dict[str, Counter[int]]
    server_errors: list[Exchange]
    check_failures: list[str]
    engine_errors: list[str]
    requests: int
    routed_away: int = 0
    seed_problems: list[str] = field(default_factory=list)

    @property
    def reached(self) -> list[str]:
        """Documented operations that answered at least once with something other than 404."""
        return [op for op in self.operations if any(s != 404 for s in self.statuses.get(op, {}))]

    @property
    def coverage(self) -> float:
        return len(self.reached) / max(len(self.operations), 1)

    def summary(self) -> str:
        never = [op for op in self.operations if op not in self.reached]
        lines = [
            f"fuzz: {self.requests} requests over {len(self.operations)} operations; "
            f"{len(self.reached)} ({self.coverage:.0%}) answered non-404; "
            f"{len(self.server_errors)} 5xx; {len(self.check_failures)} failed checks; "
            f"{self.routed_away} requests to applications' own routes not counted",
        ]
        lines += [f"  seed: {p}" for p in self.seed_problems]
        lines += [f"  only 404/none: {op}" for op in never]
        lines += [
            f"  5xx {e.status} {e.method} {e.path[:160]}: {e.body[:300]!r}"
            for e in self.server_errors[:40]
        ]
        lines += [f"  check: {c}" for c in self.check_failures[:40]]
        lines += [f"  engine: {c}" for c in self.engine_errors[:20]]
        return "\n".join(lines)


def _documented_operations(document: dict[str, Any]) -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    ]


def fuzz(
    url: str,
    *,
    max_time_s: int | None,
    cap_s: float | None = None,
    seed: int | None = None,
    workers: int = 1,
    max_examples: int = 30,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful"),
) -> tuple[list[str], list[str]]:
    """Run schemathesis' engine over every operation of ``url``'s OpenAPI document.

    With ``max_time_s`` the engine keeps drawing until the time is up; without it each phase
    runs once (``max_examples`` per operation), so the work done does not depend on how busy
    the machine is, and ``cap_s`` only stops a run that takes far too long.

    Returns:
        The failed checks and the engine's own errors (statuses are in the app's recorder).
    """
    import schemathesis
    from schemathesis.engine import events

    document = httpx.get(url + "/openapi.json", timeout=30).json()
    config = schemathesis.Config.from_dict(
        {
            **({"max-time": max_time_s} if max_time_s else {}),
            "workers": workers,
            "base-url": url,
            "auth": {"basic": {"username": ADMIN[0], "password": ADMIN[1]}},
            "request-timeout": 30,
            "generation": {"max-examples": max_examples, "allow-x00": True},
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
            "phases": {
                "examples": {"enabled": "examples" in phases},
                "coverage": {
                    "enabled": "coverage" in phases,
                    "extra-data-sources": {"responses": True},
                },
                "fuzzing": {
                    "enabled": "fuzzing" in phases,
                    "extra-data-sources": {"responses": True},
                },
                "stateful": {
                    "enabled": "stateful" in phases,
                    "inference": {"algorithms": ["location-headers", "dependency-analysis"]},
                },
            },
            "dictionaries": {name: {"values": values} for name, values in SEEDED_VALUES.items()},
            "parameters": {
                key: {"dictionary": name, "probability": 0.7}
                for key, name in SEEDED_PARAMETERS.items()
            },
            **({"seed": seed} if seed is not None else {}),
        }
    )
    schema = schemathesis.openapi.from_dict(document, config=config)
    check_failures: list[str] = []
    engine_errors: list[str] = []
    stream = schemathesis.engine.from_schema(schema).execute()
    started = time.monotonic()
    for event in stream:
        if cap_s is not None and time.monotonic() - started > cap_s:
            stream.stop()  # the next event is the last one
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        check_failures.append(
                            f"{node.name} {event.recorder.label}: {failure.title}: "
                            f"{str(failure.message)[:300]}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            engine_errors.append(f"{getattr(event, 'label', '')}: {event.info.message[:300]}")
    return check_failures, engine_errors

T = "/torc-service/v1"


def _torc_seed(client: httpx.Client) -> list[tuple[str, str, Any]]:
    """Two Torc workflows with every kind of row (ids 1-3 exist for each resource)."""
    calls: list[tuple[str, str, Any]] = []
    for n in (1, 2):
        wf = f"{T}/workflows"
        calls.append(("POST", wf, {"name": f"fz{n}", "user": "fuzz"}))
    for wf in (1, 2):
        calls += [
            ("POST", f"{T}/resource_requirements",
             {"workflow_id": wf, "name": f"rr{wf}", "num_cpus": 1, "memory": "1m",
              "runtime": "P0DT1M"}),
            ("POST", f"{T}/files", {"workflow_id": wf, "name": f"f{wf}", "path": f"/tmp/f{wf}"}),
            ("POST", f"{T}/user_data", {"workflow_id": wf, "name": f"ud{wf}", "data": {"a": 1}}),
            ("POST", f"{T}/jobs", {"workflow_id": wf, "name": f"a{wf}", "command": "true"}),
            ("POST", f"{T}/jobs", {"workflow_id": wf, "name": f"b{wf}", "command": "true",
                                   "depends_on_job_ids": [2 * wf - 1] if wf == 1 else []}),
            ("POST", f"{T}/compute_nodes",
             {"workflow_id": wf, "hostname": "localhost", "pid": 1, "num_cpus": 1,
              "memory_gb": 1.0, "num_gpus": 0, "num_nodes": 1, "is_active": True,
              "start_time": "2026-01-01T00:00:00Z", "compute_node_type": "local"}),
            ("POST", f"{T}/events", {"workflow_id": wf, "data": {"kind": "fuzz"}}),
            ("POST", f"{T}/failure_handlers",
             {"workflow_id": wf, "name": f"fh{wf}", "rules": "[]"}),
            ("POST", f"{T}/workflows/{wf}/actions",
             {"workflow_id": wf, "trigger_type": "on_workflow_start", "action_type": "run_commands",
              "action_config": {"commands": ["true"]}}),
            ("POST", f"{T}/workflows/{wf}/initialize_jobs", {}),
            ("POST", f"{T}/results",
             {"workflow_id": wf, "job_id": 2 * wf - 1, "run_id": 1, "return_code": 0,
              "exec_time_minutes": 0.1, "completion_time": "2026-01-01T00:00:00Z",
              "status": "completed", "compute_node_id": wf}),
        ]
    return calls


def seed(url: str, data_dir: Path, store_root: Path) -> list[str]:
    """Create a valid object of every kind, so fuzzed ids and names reach real state.

    Returns:
        The seeding calls that did not succeed (printed with the report; the run goes on).
    """
    import shutil

    from tests.integration.mlserve.conftest import add_sub_files
    from tests.integration.torchserve.builders import (
        DIAMOND_FUNCTIONS,
        DIAMOND_SPEC,
        ECHO_HANDLER,
        SLEEPY_MODEL,
        make_mar,
        make_war,
    )
    from tests.model_repos import write_add_sub

    problems: list[str] = []
    write_add_sub(store_root / "models")
    archives = data_dir / "archives"
    if not archives.exists():
        built = [
            make_mar(archives / "m", "echo", ECHO_HANDLER, work=archives / "echo-src"),
            make_mar(archives / "m", "sleepy1", SLEEPY_MODEL, work=archives / "s1-src"),
            make_mar(archives / "m", "sleepy2", SLEEPY_MODEL, work=archives / "s2-src"),
            make_war(archives / "w", "diamond", DIAMOND_SPEC, DIAMOND_FUNCTIONS),
        ]
        for path in built:
            store = store_root / ("model-store" if path.suffix == ".mar" else "wf-store")
            store.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, store / path.name)
    with httpx.Client(base_url=url, auth=ADMIN, timeout=60) as client:

        def call(method: str, path: str, body: Any = None, **kwargs: Any) -> None:
            response = client.request(method, path, json=body, **kwargs)
            if response.status_code >= 300 and response.status_code != 409:  # 409: still there
                problems.append(f"{method} {path}: {response.status_code} {response.text[:200]}")

        call("POST", "/v2/repository/models/add_sub/load")
        call("POST", "/models", params={"url": "echo.mar", "initial_workers": 1})
        call("POST", "/workflows", params={"url": "diamond.war"})
        call("POST", "/api/tritons", {"name": "t1", "host": "127.0.0.1", "port": 1})
        response = client.post(
            "/api/models", data={"name": "mlm"}, files=add_sub_files("mlm")
        )
        if response.status_code not in (201, 409):
            problems.append(f"POST /api/models: {response.status_code} {response.text[:200]}")
        call("POST", "/api/users", {"name": "alice", "password": "secret-pass-1"})
        call("POST", "/api/apps", {"name": "app1"})
        call("POST", "/api/apps/app1/routes/mlm")
        call("POST", "/api/users/alice/apps/app1/auth")
        call("POST", "/api/apps/app1/consumers/alice")
        for method, path, body in _torc_seed(client):
            call(method, path, body)
    return problems


# Values of seeded objects, offered for path and query parameters of those names (most of the
# time; the fuzzer draws its own values for the rest).
SEEDED_VALUES: dict[str, list[Any]] = {
    "ids": [1, 2, 3],
    "model_names": ["add_sub", "echo", "mlm"],
    "versions": ["1", "1.0"],
    "workflow_names": ["diamond"],
    "idents": ["1", "2", "mlm", "alice", "app1", "t1", "admin"],
    "apps": ["app1"],
    "consumers": ["alice"],
}
SEEDED_PARAMETERS: dict[str, str] = {
    **{
        f"{where}.{name}": "ids"
        for where in ("path", "query")
        for name in (
            "workflow_id", "job_id", "item_id", "action_id", "run_id", "compute_node_id",
            "task_id", "id",
        )
    },
    "path.model_name": "model_names",
    "path.model_version": "versions",
    "path.version": "versions",
    "path.workflow_name": "workflow_names",
    "path.ident": "idents",
    "path.app": "apps",
    "path.model": "model_names",
    "path.consumer": "consumers",
}


def campaign(
    target: Target,
    data_dir: Path,
    *,
    total_s: int | None,
    seed_value: int | None,
    max_examples: int = 8,
    cap_s: float = 240.0,
) -> FuzzReport:
    """Three passes (examples + coverage, fuzzing, stateful), each on freshly seeded state.

    Seeding again before each pass brings back what the previous pass deleted, so operations on
    existing objects meet real state in every pass. ``total_s`` shares that time among the
    passes (``make fuzz``); ``None`` runs each pass once with ``max_examples`` per operation
    (``make test``: the same work on a busy machine as on a quiet one), each capped at
    ``cap_s``.
    """
    document = httpx.get(target.url + "/openapi.json", timeout=30).json()
    problems: list[str] = []
    checks: list[str] = []
    errors: list[str] = []
    # Examples and coverage enumerate the document once; fuzzing and stateful draw more.
    passes = [(("examples", "coverage"), 0.4), (("fuzzing",), 0.35), (("stateful",), 0.25)]
    for phases, share in passes:
        problems += seed(target.url, data_dir, target.settings.store_root)
        got, engine_errors = fuzz(
            target.url,
            max_time_s=max(int(total_s * share), 10) if total_s else None,
            cap_s=None if total_s else cap_s * share / 0.4,
            seed=seed_value,
            phases=phases,
            max_examples=max_examples,
        )
        checks += got
        errors += engine_errors
    recorder = target.recorder
    with recorder.lock:
        statuses = {op: Counter(c) for op, c in recorder.statuses.items()}
        server_errors = list(recorder.server_errors)
        routed_away = sum(recorder.routed_away.values())
    return FuzzReport(
        operations=_documented_operations(document),
        statuses=statuses,
        server_errors=server_errors,
        check_failures=sorted(set(checks)),
        engine_errors=errors,
        requests=sum(sum(c.values()) for c in statuses.values()),
        routed_away=routed_away,
        seed_problems=problems,
    )
