"""Admin-API security: credentials always required, roles, no password or hash ever returned."""

from __future__ import annotations

import json

import httpx

from tests.integration.mlserve.conftest import ADMIN, create_model

ADMIN_ENDPOINTS = [
    ("GET", "/api/tritons"),
    ("POST", "/api/tritons"),
    ("GET", "/api/models"),
    ("GET", "/api/models/1"),
    ("DELETE", "/api/models/1"),
    ("POST", "/api/models/1/load"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("PATCH", "/api/users/1"),
    ("DELETE", "/api/users/1"),
    ("GET", "/api/apps"),
    ("POST", "/api/apps"),
    ("POST", "/api/apps/1/routes/1"),
    ("POST", "/api/users/1/apps/1/auth"),
]


async def test_admin_api_requires_credentials_even_from_loopback(client: httpx.AsyncClient):
    for method, path in ADMIN_ENDPOINTS:
        resp = await client.request(method, path, json={})
        assert resp.status_code == 401, (method, path, resp.text)
        assert "error" in resp.json()
        resp = await client.request(method, path, json={}, headers={"apikey": "not-a-key"})
        assert resp.status_code == 401, (method, path)
    resp = await client.get("/api/users", auth=("admin", "wrong"))
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Basic")


async def test_user_role_gets_403_on_admin_operations_but_reads_itself(admin: httpx.AsyncClient):
    created = (await admin.post("/api/users", json={"name": "alice", "password": "pw1"})).json()
    key = created["key"]
    as_user = {"apikey": key}
    for method, path in ADMIN_ENDPOINTS:
        resp = await admin.request(method, path, json={}, headers=as_user, auth=None)
        assert resp.status_code == 403, (method, path, resp.text)
    me = await admin.get("/api/users/alice", headers=as_user, auth=None)
    assert me.status_code == 200
    assert me.json()["data"]["name"] == "alice"
    assert (
        await admin.get(f"/api/users/{created['id']}/apps", headers={"X-API-Key": key}, auth=None)
    ).status_code == 200
    assert (await admin.get("/api/users/admin", headers=as_user, auth=None)).status_code == 403
    basic = await admin.get("/api/users/alice", auth=("alice", "pw1"))
    assert basic.status_code == 200


async def test_no_endpoint_returns_a_password_or_hash(admin: httpx.AsyncClient):
    await admin.post(
        "/api/users", json={"name": "carol", "password": "Sup3r-Secret!", "tags": "a,b"}
    )
    await admin.post("/api/apps", json={"name": "app1"})
    await create_model(admin, "m1")
    await admin.post("/api/apps/app1/routes/m1")
    await admin.post("/api/apps/app1/consumers/carol")
    bodies = []
    for path in [
        "/api/users",
        "/api/users/carol",
        "/api/users/carol/apps",
        "/api/apps",
        "/api/apps/app1",
        "/api/apps/app1/consumers",
        "/api/apps/app1/routes",
        "/api/models",
        "/api/models/m1",
    ]:
        resp = await admin.get(path)
        assert resp.status_code == 200, (path, resp.text)
        bodies.append(resp.text)
    patched = await admin.patch(
        "/api/users/carol", json={"password": "Other-Secret!", "rotate_key": True}
    )
    bodies.append(patched.text)
    text = "\n".join(bodies)
    for forbidden in (
        "Sup3r-Secret!",
        "Other-Secret!",
        "$argon2",
        "password_hash",
        "api_key_hash",
        '"password"',
    ):
        assert forbidden not in text
    user = json.loads(bodies[1])["data"]
    assert user["tags"] == ["a", "b"]
    assert user["apps"] == ["app1"]


async def test_rotated_key_replaces_the_old_one(admin: httpx.AsyncClient):
    key = (
        await admin.post("/api/users", json={"name": "dave", "password": "pw", "role": "admin"})
    ).json()["key"]
    assert (await admin.get("/api/tritons", headers={"apikey": key}, auth=None)).status_code == 200
    new_key = (await admin.patch("/api/users/dave", json={"rotate_key": True})).json()["key"]
    assert new_key
    assert new_key != key
    assert (await admin.get("/api/tritons", headers={"apikey": key}, auth=None)).status_code == 401
    assert (
        await admin.get("/api/tritons", headers={"apikey": new_key}, auth=None)
    ).status_code == 200


async def test_bootstrap_admin_exists_once_and_last_admin_is_protected(admin: httpx.AsyncClient):
    users = (await admin.get("/api/users")).json()["users"]
    assert [u["name"] for u in users if u["role"] == "admin"] == ["admin"]
    assert (await admin.delete("/api/users/admin")).status_code == 409
    assert (await admin.patch("/api/users/admin", json={"role": "user"})).status_code == 409


async def test_user_validation(admin: httpx.AsyncClient):
    assert (
        await admin.post("/api/users", json={"name": "eve", "password": "pw", "role": "root"})
    ).status_code == 400
    assert (
        await admin.post("/api/users", json={"name": "bad name", "password": "pw"})
    ).status_code == 400
    assert (
        await admin.post("/api/users", json={"name": "eve", "password": "pw"})
    ).status_code == 201
    assert (
        await admin.post("/api/users", json={"name": "eve", "password": "pw"})
    ).status_code == 409
    assert (await admin.get("/api/users/nobody")).status_code == 404


async def test_remote_management_accepts_admin_credentials_via_guard(settings, gateway):
    """The management guard asks app.state.admin_check for non-loopback callers."""
    from control_plane.app import create_app

    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote,
    ):
        assert (await remote.get("/api/tritons")).status_code == 401
        assert (await remote.get("/api/tritons", auth=ADMIN)).status_code == 200
        assert app.state.admin_check({"authorization": "Basic YWRtaW46YWRtaW4="}) is True
        assert app.state.admin_check({"apikey": "nope"}) is False
