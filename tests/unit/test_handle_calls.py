"""DeploymentHandle calls of the control plane work from threadpool code (issue 19).

With ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` a handle raises "No event loop running" when called
outside an event loop. The stand-in handle below raises the same way; the real handle is
exercised by tests/serve/test_v2_models.py (``GET /v2/models/stats`` with a model loaded).
"""

from __future__ import annotations

import ast
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from control_plane.errors import UpstreamUnavailableError
from control_plane.integrations import ray_serve

ROOT = Path(__file__).resolve().parents[2]


class _LoopOnlyMethod:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def remote(self, *args: Any) -> Any:
        asyncio.get_running_loop()  # RuntimeError outside a loop, like the optimized handle
        self.calls.append(threading.current_thread().name)

        async def answer() -> Any:
            return {"args": list(args)}

        return answer()


class _FakeServe:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_app_handle(self, name: str) -> Any:
        asyncio.get_running_loop()
        if name == "missing":
            raise KeyError(name)
        calls = self.calls

        class Handle:
            stats = _LoopOnlyMethod(calls)

        return Handle()


@pytest.fixture(name="serve")
def serve_fixture(monkeypatch: pytest.MonkeyPatch) -> _FakeServe:
    fake = _FakeServe()
    monkeypatch.setattr(ray_serve, "_serve", lambda: fake)
    return fake


def test_the_stand_in_handle_refuses_calls_outside_a_loop(serve):
    with pytest.raises(RuntimeError):
        _LoopOnlyMethod([]).remote()


def test_call_from_threadpool_threads_runs_on_the_private_loop(serve):
    gateway = ray_serve.RayServeGateway()
    with ThreadPoolExecutor(4) as pool:  # sync FastAPI routes run in such threads
        results = list(pool.map(lambda n: gateway.call("p-v2-m", "stats", n), range(8)))
    assert results == [{"args": [n]} for n in range(8)]
    assert set(serve.calls) == {"serve-handle-loop"}


async def test_call_from_a_thread_of_an_async_route_works(serve):
    gateway = ray_serve.RayServeGateway()
    result = await asyncio.to_thread(gateway.call, "p-v2-m", "stats", 1)
    assert result == {"args": [1]}


def test_a_missing_application_is_upstream_unavailable(serve):
    with pytest.raises(UpstreamUnavailableError, match="missing"):
        ray_serve.RayServeGateway().call("missing", "stats")


def _handle_users(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = {"get_app_handle", "get_deployment_handle", "DeploymentHandle"}
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr in names)
        or (isinstance(node, ast.Name) and node.id in names)
    ]


def test_only_the_gateway_call_method_obtains_deployment_handles():
    """Every control-plane handle call goes through RayServeGateway.call (its private loop)."""
    users = [u for p in (ROOT / "control_plane").rglob("*.py") for u in _handle_users(p)]
    gateway = ROOT / "control_plane" / "integrations" / "ray_serve.py"
    source = gateway.read_text().splitlines()
    for user in users:
        file, line = user.rsplit(":", 1)
        assert file == str(gateway.relative_to(ROOT)), user
        enclosing = [s for s in source[: int(line)] if s.lstrip().startswith("def ")][-1]
        assert "def call(" in enclosing, user
    assert users, "RayServeGateway.call no longer obtains a handle: update this test"
