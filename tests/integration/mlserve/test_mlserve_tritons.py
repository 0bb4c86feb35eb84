"""Tritons CRUD and validation, and load/unload records (built-in via the v2 surface's service)."""

from __future__ import annotations

import httpx

from tests.conftest import free_port
from tests.integration.mlserve.conftest import add_sub_files, create_model


async def test_triton_crud_and_validation(admin: httpx.AsyncClient):
    dead_port = free_port()  # nothing listens: the probe says offline, registration still works
    resp = await admin.post("/api/tritons", json={"ip": "127.0.0.1", "port": str(dead_port)})
    assert resp.status_code == 201, resp.text
    tid = resp.json()["id"]
    data = (await admin.get(f"/api/tritons/{tid}")).json()["data"]
    assert data["state"] == "offline"
    assert data["port"] == str(dead_port)
    assert data["host"] == data["ip"] == "127.0.0.1"
    assert data["name"] == f"127.0.0.1:{dead_port}"
    dup = await admin.post("/api/tritons", json={"host": "127.0.0.1", "port": dead_port})
    assert dup.status_code == 409
    for body in (
        {"ip": "127.0.0.1", "port": 0},
        {"ip": "127.0.0.1", "port": 70000},
        {"port": 8000},
        {"ip": "127.0.0.1", "port": "abc"},
        {"ip": "h", "port": 1, "bogus": 1},
    ):
        assert (await admin.post("/api/tritons", json=body)).status_code == 400, body
    patched = (await admin.patch(f"/api/tritons/{tid}", json={"gpus": 2, "name": "gpu-box"})).json()
    assert patched["status"] == "ok"
    assert patched["name"] == "gpu-box"
    assert (await admin.get("/api/tritons/gpu-box")).json()["data"]["gpus"] == 2
    listed = (await admin.get("/api/tritons")).json()["tritons"]
    assert [t["id"] for t in listed] == [0, tid]
    assert listed[0]["builtin"]
    assert listed[0]["state"] == "ready"
    assert (await admin.delete("/api/tritons/0")).status_code == 409
    assert (await admin.patch("/api/tritons/builtin", json={"port": 1})).status_code == 400
    assert (await admin.delete(f"/api/tritons/{tid}")).status_code == 200
    assert (await admin.get(f"/api/tritons/{tid}")).status_code == 404


async def test_load_on_unreachable_triton_is_an_upstream_error(admin: httpx.AsyncClient):
    await create_model(admin, "lm")
    tid = (await admin.post("/api/tritons", json={"ip": "127.0.0.1", "port": free_port()})).json()[
        "id"
    ]
    resp = await admin.post("/api/models/lm/load", json={"triton_id": tid})
    assert resp.status_code == 503, resp.text
    assert "unreachable" in resp.json()["error"]
    assert (await admin.get("/api/models/lm")).json()["data"]["tritons"] == []
    assert (await admin.post("/api/models/lm/load", json={"triton_id": 999})).status_code == 404
    assert (await admin.post("/api/models/lm/load", json={})).status_code == 400
    assert (
        await admin.post("/api/models/lm/load", json={"triton_id": tid, "version": 9})
    ).status_code == 400
    # unloading something not loaded is fine on the built-in server
    assert (await admin.post("/api/models/lm/unload", json={"triton_id": 0})).status_code == 200


async def test_builtin_load_deploys_a_serve_app_and_records_it(admin: httpx.AsyncClient, gateway):
    model_id = await create_model(admin, "bl")
    resp = await admin.post(
        f"/api/models/{model_id}/load", json={"triton_id": "builtin", "version": 1}
    )
    assert resp.status_code == 200, resp.text
    assert "p-v2-bl" in gateway.apps
    assert gateway.apps["p-v2-bl"].route_prefix == "/v2/models/bl"
    tritons = (await admin.get("/api/tritons")).json()["tritons"]
    assert tritons[0]["models"] == ["bl"]
    model = (await admin.get("/api/models/bl")).json()["data"]
    assert model["tritons"][0]["id"] == 0
    assert model["tritons"][0]["version"] == 1
    resp = await admin.post("/api/models/bl/unload", json={"triton_id": 0})
    assert resp.status_code == 200
    assert "p-v2-bl" not in gateway.apps
    assert (await admin.get("/api/tritons")).json()["tritons"][0]["models"] == []
    # delete unloads everywhere first
    await admin.post("/api/models/bl/load", json={"triton_id": 0})
    assert "p-v2-bl" in gateway.apps
    assert (await admin.delete("/api/models/bl")).status_code == 200
    assert "p-v2-bl" not in gateway.apps


async def test_gateway_app_is_recorded_at_startup(admin: httpx.AsyncClient, gateway):
    spec = gateway.apps["p-gw-apps"]
    assert spec.route_prefix == "/apps"
    assert spec.builder == "deployments.gateway:build_gateway"
    assert spec.args.database_url.startswith(("sqlite", "postgresql"))


async def test_model_loaded_through_v2_repository_shows_on_builtin(
    admin: httpx.AsyncClient, gateway
):
    """The built-in server's truth is the v2 registry: /v2/repository loads count too."""
    await create_model(admin, "via_v2")
    resp = await admin.post("/v2/repository/models/via_v2/load")
    assert resp.status_code == 200, resp.text
    tritons = (await admin.get("/api/tritons")).json()["tritons"]
    assert tritons[0]["models"] == ["via_v2"]
    model = (await admin.get("/api/models/via_v2")).json()["data"]
    assert [t["id"] for t in model["tritons"]] == [0]
    assert (await admin.post("/v2/repository/models/via_v2/unload")).status_code == 200
    assert (await admin.get("/api/models/via_v2")).json()["data"]["tritons"] == []


async def test_responses_carry_both_seed_shapes(admin: httpx.AsyncClient):
    """Planned "Response" fields and "Response Now" envelopes at once (the issue's rule)."""
    created = (await admin.post("/api/tritons", json={"ip": "127.0.0.1", "port": "1"})).json()
    assert {"id", "name", "host", "ip", "port", "gpus", "state", "create_at"} <= set(created)
    got = (await admin.get(f"/api/tritons/{created['id']}")).json()
    assert got["data"]["port"] == got["port"] == "1"
    assert got["state"] in ("ready", "live", "offline")
    files = add_sub_files("shapes")
    model = (await admin.post("/api/models", data={"name": "shapes"}, files=files)).json()
    assert model["status"] == "ok"
    assert {"id", "name", "latest_version", "inference_count", "state", "create_at"} <= set(model)
    detail = (await admin.get("/api/models/shapes")).json()
    assert detail["versions"][0]["version"] == 1
    assert detail["versions"][0]["state"] == "ready"
    assert detail["config"] == {}  # seed "Now": {"host:port": metadata} of loaded servers
    assert detail["data"]["versions"] == [1]
    assert detail["data"]["config"]["name"] == "shapes"
    app = (await admin.post("/api/apps", json={"name": "shapes"})).json()
    assert {"id", "name", "retries", "routes", "consumers", "create_at", "update_at"} <= set(app)
    assert (await admin.patch("/api/apps/shapes", json={"retries": 1})).json()["retries"] == 1
    assert (await admin.get("/api/apps/shapes")).json()["retries"] == 1
    user = (await admin.get("/api/users/admin")).json()
    assert user["name"] == user["data"]["name"] == "admin"
    assert "password" not in user
