"""TorchServe 0.12 token authorization on the control plane (keys shared through the database)."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from control_plane.services.torchserve.apps import model_app
from control_plane.settings import Settings

INVALID = {
    "code": 400,
    "type": "InvalidKeyException",
    "message": "Token Authorization failed. Token either incorrect, expired, or not provided "
    "correctly",
}
INVALID_ROTATION = {
    **INVALID,
    "message": INVALID["message"].replace("Authorization", "Authentication"),
}


def token_settings(settings: Settings, **torchserve: Any) -> Settings:
    """The test's settings with token authorization on."""
    return settings.model_copy(
        update={
            "torchserve": settings.torchserve.model_copy(update={"token_auth": True, **torchserve})
        }
    )


@asynccontextmanager
async def platform(settings: Settings, gateway) -> AsyncIterator[httpx.AsyncClient]:
    """One control-plane replica (its own app, lifespan and engine) on the shared database."""
    from control_plane.app import create_app

    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


def keys(settings: Settings) -> dict[str, str]:
    return {k: v["key"] for k, v in json.loads(settings.key_file.read_text()).items()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_token_auth_writes_key_file_in_torchserve_format(settings, gateway):
    ts = token_settings(settings)
    async with platform(ts, gateway):
        loaded = json.loads(ts.key_file.read_text())
    assert set(loaded) == {"management", "inference", "API"}
    for kind in ("management", "inference"):
        assert re.fullmatch(r"[A-Za-z0-9_-]{8}", loaded[kind]["key"])
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", loaded[kind]["expiration time"]
        )
    assert set(loaded["API"]) == {"key"}
    assert stat.S_IMODE(ts.key_file.stat().st_mode) == 0o600


async def test_token_auth_refuses_missing_wrong_and_other_keys_with_400(settings, gateway, stores):
    ts = token_settings(settings)
    async with platform(ts, gateway) as client:
        k = keys(ts)
        for headers in (
            {},
            bearer("wrong"),
            bearer(k["inference"]),
            bearer(k["API"]),
            {"Authorization": f"bearer {k['management']}"},
            {"Authorization": f"Bearer {k['management']} x"},
        ):
            for method, path in (("GET", "/models"), ("GET", "/workflows"), ("GET", "/models/x")):
                resp = await client.request(method, path, headers=headers)
                assert resp.status_code == 400, (path, headers, resp.text)
                assert resp.json() == INVALID
                assert resp.text.endswith("}")  # error bodies come from the one error table
        ok = await client.get("/models", headers={"Authorization": f"Bearer  {k['management']}"})
        assert ok.status_code == 200
        assert ok.json() == {"models": []}
        resp = await client.post(
            "/models",
            params={"url": "echo.mar", "initial_workers": 1},
            headers=bearer(k["management"]),
        )
        assert resp.status_code == 200, resp.text
        # inference endpoints take the inference key
        assert (await client.get("/ping", headers=bearer(k["management"]))).json() == INVALID
        assert (await client.get("/ping")).json() == INVALID
        assert (await client.get("/ping", headers=bearer(k["inference"]))).json() == {
            "status": "Healthy"
        }
        assert (await client.post("/predictions/nosuch")).json() == INVALID
        assert (await client.post("/wfpredict/nosuch")).json() == INVALID
        resp = await client.post("/predictions/nosuch", headers=bearer(k["inference"]))
        assert resp.status_code == 404
        # model replicas are told where to check the key
        key_store = gateway.apps[model_app("echo")].args.key_store
        assert key_store.database_url == ts.database_url
        assert key_store.ttl_s == ts.torchserve.token_cache_ttl_s


async def test_token_rotation_needs_the_api_key_and_refuses_the_old_key(settings, gateway):
    ts = token_settings(settings)
    async with platform(ts, gateway) as client:
        k = keys(ts)
        for params, headers in (
            ({"type": "inference"}, {}),
            ({"type": "inference"}, bearer(k["management"])),
            ({"type": "other"}, bearer(k["API"])),
            ({}, bearer(k["API"])),
        ):
            resp = await client.get("/token", params=params, headers=headers)
            assert resp.status_code == 400
            assert resp.json() == INVALID_ROTATION
        resp = await client.get("/token", params={"type": "inference"}, headers=bearer(k["API"]))
        assert resp.status_code == 200
        assert resp.content == b"\n"
        assert resp.headers["content-type"] == "application/json"
        fresh = keys(ts)
        assert fresh["inference"] != k["inference"]
        assert (fresh["management"], fresh["API"]) == (k["management"], k["API"])
        assert (await client.get("/ping", headers=bearer(k["inference"]))).status_code == 400
        assert (await client.get("/ping", headers=bearer(fresh["inference"]))).status_code == 200
        resp = await client.post("/token", params={"type": "management"}, headers=bearer(k["API"]))
        assert resp.status_code == 200
        assert (await client.get("/models", headers=bearer(k["management"]))).status_code == 400
        newest = keys(ts)["management"]
        assert (await client.get("/models", headers=bearer(newest))).status_code == 200


async def test_token_expires_after_token_expiration_min(settings, gateway):
    ts = token_settings(settings, token_expiration_min=3 / 60)  # three seconds
    async with platform(ts, gateway) as client:
        k = keys(ts)
        assert (await client.get("/models", headers=bearer(k["management"]))).status_code == 200
        await asyncio.sleep(3.2)
        resp = await client.get("/models", headers=bearer(k["management"]))
        assert resp.json() == INVALID
        # the API key never expires: rotation gives a fresh management key
        resp = await client.get("/token", params={"type": "management"}, headers=bearer(k["API"]))
        assert resp.status_code == 200
        fresh = keys(ts)["management"]
        assert (await client.get("/models", headers=bearer(fresh))).status_code == 200


async def test_two_control_plane_replicas_share_keys_and_rotations(settings, gateway):
    ts = token_settings(settings)
    async with platform(ts, gateway) as first:
        k = keys(ts)
        async with platform(ts, gateway) as second:
            assert keys(ts) == k  # the second replica keeps the keys it found
            for client in (first, second):
                resp = await client.get("/models", headers=bearer(k["management"]))
                assert resp.status_code == 200
            resp = await second.get(
                "/token", params={"type": "management"}, headers=bearer(k["API"])
            )
            assert resp.status_code == 200
            fresh = keys(ts)["management"]
            for client in (first, second):
                assert (await client.get("/models", headers=bearer(k["management"]))).json() == (
                    INVALID
                )
                resp = await client.get("/models", headers=bearer(fresh))
                assert resp.status_code == 200


async def test_token_auth_off_by_default_drops_keys_and_hides_token_endpoint(settings, gateway):
    ts = token_settings(settings)
    async with platform(ts, gateway):
        assert ts.key_file.exists()
    async with platform(settings, gateway) as client:
        assert (await client.get("/models")).status_code == 200
        assert (await client.get("/ping")).status_code == 200
        resp = await client.get("/token", params={"type": "inference"})
        assert resp.status_code == 404
        assert resp.json()["type"] == "ResourceNotFoundException"
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM ts_token_keys")).scalar() == 0
    engine.dispose()


async def test_restart_with_missing_key_file_regenerates_keys(settings, gateway):
    ts = token_settings(settings)
    async with platform(ts, gateway):
        old = keys(ts)
    ts.key_file.unlink()
    async with platform(ts, gateway) as client:
        new = keys(ts)
        assert new["management"] != old["management"]
        assert (await client.get("/models", headers=bearer(old["management"]))).status_code == 400
        assert (await client.get("/models", headers=bearer(new["management"]))).status_code == 200


async def test_console_admin_session_stands_for_the_management_key(settings, gateway):
    import re

    ts = token_settings(settings)
    async with platform(ts, gateway) as client:
        login = await client.post(
            "/console/login", data={"username": "admin", "password": "admin"}
        )
        assert login.status_code == 303
        cookie = {"cookie": login.headers["set-cookie"].split(";", 1)[0]}
        client.cookies.clear()
        page = await client.get("/console/models", headers=cookie)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert csrf
        ok = await client.get("/models", headers={**cookie, "x-csrf-token": csrf.group(1)})
        assert ok.status_code == 200, ok.text
        # the cookie alone (no CSRF token) or a wrong token is not a management key
        assert (await client.get("/models", headers=cookie)).json() == INVALID
        wrong = await client.get("/models", headers={**cookie, "x-csrf-token": "x"})
        assert wrong.json() == INVALID
