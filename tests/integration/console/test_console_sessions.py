"""Console login, session cookie, CSRF and the admin hook, on SQLite and PostgreSQL (no Ray)."""

from __future__ import annotations

import re

import httpx

from control_plane.app import create_app
from control_plane.settings import Settings
from tests.fakes import FakeServeGateway

ADMIN = ("admin", "admin")


async def _login(client: httpx.AsyncClient, user: str = "admin", password: str = "admin"):
    return await client.post(
        "/console/login",
        data={"username": user, "password": password, "next": "/console/jobs"},
    )


def _cookie(response: httpx.Response) -> str:
    match = re.search(r"cp_console=([^;]+)", response.headers["set-cookie"])
    assert match
    return match.group(1)


async def _csrf(client: httpx.AsyncClient, cookie: str) -> str:
    page = await client.get("/console/overview", headers={"cookie": f"cp_console={cookie}"})
    assert page.status_code == 200
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def test_login_sets_an_httponly_strict_cookie_and_redirects(client):
    client.cookies.clear()
    response = await _login(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/jobs"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie


async def test_login_refuses_wrong_password_and_non_admins(client):
    client.cookies.clear()
    wrong = await _login(client, password="nope")
    assert wrong.status_code == 401
    assert "Invalid authentication credentials" in wrong.text
    assert "set-cookie" not in wrong.headers
    assert (
        await client.post("/api/users", auth=ADMIN, json={"name": "bob", "password": "pw-bob-1"})
    ).status_code == 201
    user = await _login(client, "bob", "pw-bob-1")
    assert user.status_code == 401
    assert "needs an admin account" in user.text


async def test_cross_site_login_is_refused(client):
    client.cookies.clear()
    response = await client.post(
        "/console/login",
        data={"username": "admin", "password": "admin"},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_pages_need_a_session_and_carry_security_headers(client):
    client.cookies.clear()
    anonymous = await client.get("/console/models")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=/console/models"
    cookie = _cookie(await _login(client))
    client.cookies.clear()
    page = await client.get("/console/models", headers={"cookie": f"cp_console={cookie}"})
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '<script src="/console/static/models.js">' in page.text
    assert (await client.get("/console/static/console.js")).status_code == 200
    assert (await client.get("/console/static/..%2Fpyproject.toml")).status_code == 404
    missing = await client.get("/console/nope", headers={"cookie": f"cp_console={cookie}"})
    assert missing.status_code == 404


async def test_api_accepts_the_cookie_only_with_the_csrf_header(client):
    client.cookies.clear()
    cookie = _cookie(await _login(client))
    csrf = await _csrf(client, cookie)
    client.cookies.clear()
    bare = await client.get("/api/users", headers={"cookie": f"cp_console={cookie}"})
    assert bare.status_code == 401
    forged = await client.post(
        "/api/users",
        json={"name": "eve", "password": "pw-eve-1"},
        headers={"cookie": f"cp_console={cookie}", "x-csrf-token": "guess"},
    )
    assert forged.status_code == 401
    headers = {"cookie": f"cp_console={cookie}", "x-csrf-token": csrf}
    assert (await client.get("/api/users", headers=headers)).status_code == 200
    created = await client.post(
        "/api/users", json={"name": "carol", "password": "pw-carol-1"}, headers=headers
    )
    assert created.status_code == 201


async def test_logout_needs_the_token_and_ends_the_session(client):
    client.cookies.clear()
    cookie = _cookie(await _login(client))
    csrf = await _csrf(client, cookie)
    client.cookies.clear()
    jar = {"cookie": f"cp_console={cookie}"}
    refused = await client.post("/console/logout", data={"csrf_token": "x"}, headers=jar)
    assert refused.status_code == 403
    done = await client.post("/console/logout", data={"csrf_token": csrf}, headers=jar)
    assert done.status_code == 303
    assert done.headers["location"] == "/console/login"
    assert (await client.get("/console/overview", headers=jar)).status_code == 303
    api = await client.get("/api/users", headers={**jar, "x-csrf-token": csrf})
    assert api.status_code == 401


async def test_a_session_made_on_one_replica_works_on_another(client, settings):
    """Sessions are rows in the shared database, so any control-plane replica accepts them."""
    client.cookies.clear()
    cookie = _cookie(await _login(client))
    csrf = await _csrf(client, cookie)
    other = create_app(settings, gateway_factory=FakeServeGateway)
    transport = httpx.ASGITransport(app=other, client=("127.0.0.1", 50001))
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as second,
    ):
        headers = {"cookie": f"cp_console={cookie}", "x-csrf-token": csrf}
        assert (await second.get("/api/users", headers=headers)).status_code == 200
        page = await second.get("/console/jobs", headers={"cookie": f"cp_console={cookie}"})
        assert page.status_code == 200


async def test_remote_management_calls_pass_the_guard_with_cookie_and_token(settings, tmp_path):
    """With ``management_require_auth`` the guard accepts the console session (with its token)."""
    strict = Settings(
        data_dir=settings.data_dir,
        db={"url": settings.database_url},
        auth={"management_require_auth": True},
    )
    app = create_app(strict, gateway_factory=FakeServeGateway)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50002))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as remote,
    ):
        cookie = _cookie(await _login(remote))
        csrf = await _csrf(remote, cookie)
        remote.cookies.clear()
        jar = {"cookie": f"cp_console={cookie}"}
        assert (await remote.post("/v2/repository/index", headers=jar)).status_code == 401
        ok = await remote.post("/v2/repository/index", headers={**jar, "x-csrf-token": csrf})
        assert ok.status_code == 200
        status = await remote.get("/status", headers={**jar, "x-csrf-token": csrf})
        assert status.status_code == 200


async def test_demoting_or_deleting_the_admin_ends_its_console_access(client):
    client.cookies.clear()
    body = {"name": "ops2", "password": "pw-ops-2", "role": "admin"}
    assert (await client.post("/api/users", auth=ADMIN, json=body)).status_code == 201
    cookie = _cookie(await _login(client, "ops2", "pw-ops-2"))
    csrf = await _csrf(client, cookie)
    client.cookies.clear()
    jar = {"cookie": f"cp_console={cookie}"}
    demote = await client.patch("/api/users/ops2", auth=ADMIN, json={"role": "user"})
    assert demote.status_code == 200
    client.cookies.clear()
    assert (await client.get("/console/overview", headers=jar)).status_code == 303
    forbidden = await client.get("/api/users", headers={**jar, "x-csrf-token": csrf})
    assert forbidden.status_code == 403
    assert (await client.delete("/api/users/ops2", auth=ADMIN)).status_code == 200
    client.cookies.clear()
    gone = await client.get("/api/users", headers={**jar, "x-csrf-token": csrf})
    assert gone.status_code == 401
