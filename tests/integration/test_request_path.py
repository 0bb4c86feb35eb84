"""The request path of the app: one x-request-id, sessions returned to the one pool."""

from __future__ import annotations

import httpx

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.fakes import FakeServeGateway

TORC = "/torc-service/v1"


async def test_success_and_error_carry_one_request_id(client: httpx.AsyncClient) -> None:
    ok = await client.get(f"{TORC}/ping", headers={"x-request-id": "rid-1"})
    assert ok.headers.get_list("x-request-id") == ["rid-1"]
    missing = await client.get("/no/such/route", headers={"x-request-id": "rid-2"})
    assert missing.status_code == 404
    assert missing.headers.get_list("x-request-id") == ["rid-2"]
    assert missing.json()["error"]["request_id"] == "rid-2"
    made = await client.get("/no/such/route")
    (value,) = made.headers.get_list("x-request-id")
    assert made.json()["error"]["request_id"] == value


async def test_sessions_go_back_to_the_pool_after_reads_writes_and_errors(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(f"{TORC}/workflows", json={"name": "w", "user": "u"})
    assert created.status_code == 200
    workflow_id = created.json()["id"]
    for _ in range(3):
        assert (await client.get(f"{TORC}/workflows/{workflow_id}")).status_code == 200
        assert (await client.get(f"{TORC}/workflows/999999")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
    pool = client.app.state.engine.pool  # type: ignore[attr-defined]
    assert pool.checkedout() == 0


async def test_behind_serve_the_app_leaves_the_header_to_serve(
    settings: Settings, gateway: FakeServeGateway
) -> None:
    """``echo_request_id=False`` (the Serve entrypoint): no header, the envelope keeps the id."""
    app = create_app(settings, gateway_factory=lambda: gateway, echo_request_id=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        ok = await client.get(f"{TORC}/ping", headers={"x-request-id": "rid-3"})
        assert ok.status_code == 200
        assert ok.headers.get_list("x-request-id") == []
        missing = await client.get("/no/such/route", headers={"x-request-id": "rid-4"})
        assert missing.headers.get_list("x-request-id") == []
        assert missing.json()["error"]["request_id"] == "rid-4"
