"""OneHopRoute: a sync endpoint and its response validation cost one worker-thread hop."""

from __future__ import annotations

import inspect
import threading

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from control_plane.api.gated_router import GatedRouter
from control_plane.api.one_hop_route import in_one_hop


class Answer(BaseModel):
    thread: str
    item: int


def read_item(item: int) -> dict[str, object]:
    """Read an item."""
    return {"thread": threading.current_thread().name, "item": item}


@pytest.fixture(name="hops")
def hops_fixture(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    count = [0]
    real = anyio.to_thread.run_sync

    async def counted(*args: object, **kwargs: object) -> object:
        count[0] += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return count


def _client() -> TestClient:
    router = GatedRouter()
    router.get("/items/{item}", response_model=Answer)(read_item)

    @router.get("/async/{item}", response_model=Answer)
    async def read_async(item: int) -> dict[str, object]:
        return {"thread": threading.current_thread().name, "item": item}

    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_a_syncread_item_runs_in_a_worker_thread_in_one_hop(hops: list[int]) -> None:
    client = _client()
    client.get("/items/1")  # warm
    hops[0] = 0
    resp = client.get("/items/7")
    assert resp.status_code == 200
    assert resp.json()["item"] == 7
    assert resp.json()["thread"] != threading.main_thread().name
    assert hops[0] == 1  # FastAPI alone: the endpoint, then its validation (2)


def test_validation_and_openapi_are_unchanged() -> None:
    client = _client()
    assert client.get("/items/x").status_code == 422
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/items/{item}"]["get"]
    assert op["summary"] == "Read Item"
    assert op["parameters"][0]["name"] == "item"
    assert client.get("/async/3").json()["item"] == 3


def test_the_wrapper_keeps_the_signature_and_leaves_coroutines_alone() -> None:
    wrapped = in_one_hop(read_item)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(read_item)
    assert wrapped.__name__ == "read_item"

    async def already() -> None: ...

    assert in_one_hop(already) is already
