"""Apps, routes and consumers (membership seen from both sides)."""

from __future__ import annotations

import httpx

from tests.integration.mlserve.conftest import create_model


async def test_app_crud_routes_and_consumers(admin: httpx.AsyncClient):
    await create_model(admin, "m1")
    await create_model(admin, "m2")
    await admin.post("/api/users", json={"name": "u1", "password": "pw", "tags": ["team-a"]})
    resp = await admin.post("/api/apps", json={"name": "shop", "retries": "3"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert body["retries"] == 3
    assert body["name"] == "shop"
    app_id = body["id"]
    assert (await admin.post("/api/apps", json={"name": "shop"})).status_code == 409
    for bad in (
        {"name": "x", "retries": -1},
        {"name": "x", "retries": 40000},
        {"name": "x", "host": "h"},
        {"name": "bad name"},
    ):
        assert (await admin.post("/api/apps", json=bad)).status_code == 400, bad

    assert (await admin.post(f"/api/apps/{app_id}/routes/m1")).status_code == 201
    assert (
        await admin.post("/api/apps/shop/routes/m1", json={"paths": ["/one/"], "methods": ["POST"]})
    ).status_code == 200
    clash = await admin.post("/api/apps/shop/routes/m2", json={"paths": ["/one"]})
    assert clash.status_code == 409
    assert (
        await admin.post("/api/apps/shop/routes/m2", json={"paths": ["no-slash"]})
    ).status_code == 400
    assert (await admin.post("/api/apps/shop/routes/nope")).status_code == 404
    assert (await admin.post("/api/apps/nope/routes/m2")).status_code == 404
    assert (
        await admin.post("/api/apps/shop/routes/m2", json={"url": "http://ignored"})
    ).status_code == 201
    routes = (await admin.get("/api/apps/shop/routes")).json()["routes"]
    assert [(r["model_name"], r["paths"], r["methods"]) for r in routes] == [
        ("m1", ["/one"], ["POST"]),
        ("m2", ["/m2"], ["GET", "POST"]),
    ]
    assert routes[1]["url"].endswith("/apps/shop/m2")
    assert routes[1]["protocols"] == [
        "http",
        "https",
    ]

    assert (await admin.post("/api/apps/shop/consumers/u1")).status_code == 200
    assert (await admin.post("/api/apps/shop/consumers/u1")).status_code == 200  # idempotent
    consumers = (await admin.get("/api/apps/shop/consumers")).json()["consumers"]
    assert [(c["name"], c["tags"]) for c in consumers] == [("u1", ["team-a"])]
    apps = (await admin.get("/api/users/u1/apps")).json()["apps"]
    assert apps[0]["name"] == "shop"
    assert len(apps[0]["routes"]) == 2
    assert (await admin.post("/api/users/u1/apps/shop/unauth")).status_code == 200
    assert (await admin.get("/api/apps/shop/consumers")).json()["consumers"] == []
    assert (await admin.post("/api/users/u1/apps/shop/auth")).status_code == 200
    assert (await admin.get("/api/users/u1")).json()["data"]["apps"] == ["shop"]

    assert (
        await admin.patch("/api/apps/shop", json={"host": "10.0.0.1", "port": "9000"})
    ).status_code == 200
    data = (await admin.get("/api/apps/shop")).json()["data"]
    assert (data["host"], data["ip"], data["port"]) == ("10.0.0.1", "10.0.0.1", "9000")
    assert (await admin.patch("/api/apps/shop", json={"host": ""})).status_code == 200
    assert (await admin.get("/api/apps/shop")).json()["data"]["host"] is None

    assert (await admin.delete("/api/apps/shop/routes/m2")).status_code == 200
    assert (await admin.delete("/api/models/m1")).status_code == 200  # its route goes with it
    assert (await admin.get("/api/apps/shop/routes")).json()["routes"] == []
    assert (await admin.delete("/api/users/u1")).status_code == 200
    assert (await admin.get("/api/apps/shop")).json()["data"]["consumers"] == []
    assert (await admin.delete("/api/apps/shop")).status_code == 200
    assert (await admin.get("/api/apps")).json()["apps"] == []
