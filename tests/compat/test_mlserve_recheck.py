"""External load records are re-checked on start: a model a real triton lost is pushed again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import tritonclient.http as httpclient

from control_plane.app import create_app

pytestmark = pytest.mark.compat

ADD_SUB = Path(__file__).resolve().parents[2] / "configs" / "models" / "add_sub"
MODEL = "mls_recheck"


def _files() -> list[tuple[str, tuple[str, bytes]]]:
    config = (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{MODEL}"')
    return [
        ("files[]", ("config.pbtxt", config.encode())),
        ("files[]", ("1/model.py", (ADD_SUB / "1" / "model.py").read_bytes())),
    ]


def _running(settings, gateway):
    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    return app, httpx.AsyncClient(transport=transport, base_url="http://t", auth=("admin", "admin"))


async def _wait(predicate, timeout_s=60.0):
    # async: the app's background re-check must keep running while the test waits
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_restart_repushes_models_an_external_triton_lost(settings, gateway, tritonserver):
    def ready() -> bool:
        # a client per call: geventhttpclient clients must stay on one thread
        return httpclient.InferenceServerClient(tritonserver.url).is_model_ready(MODEL)

    real = httpclient.InferenceServerClient(tritonserver.url)
    app, client = _running(settings, gateway)
    async with app.router.lifespan_context(app), client:
        tid = (
            await client.post(
                "/api/tritons", json={"host": "127.0.0.1", "port": tritonserver.http_port}
            )
        ).json()["id"]
        assert (
            await client.post("/api/models", data={"name": MODEL}, files=_files())
        ).status_code == 201
        resp = await client.post(f"/api/models/{MODEL}/load", json={"triton_id": tid, "version": 1})
        assert resp.status_code == 200, resp.text
        assert real.is_model_ready(MODEL)
        assert real.get_model_config(MODEL)["version_policy"] == {"specific": {"versions": [1]}}
        users = (await client.get("/api/users")).json()["users"]
    # the triton "restarts" and forgets the model
    real.unload_model(MODEL)
    assert await _wait(lambda: not ready())
    app, client = _running(settings, gateway)
    async with app.router.lifespan_context(app), client:
        assert await _wait(ready), tritonserver.log()[-2000:]
        assert (await client.get("/api/users")).json()["users"] == users  # bootstrap ran once
        detail = (await client.get(f"/api/models/{MODEL}")).json()["data"]
        assert detail["tritons"][0]["state"] == "READY"
        assert detail["tritons"][0]["metadata"]["versions"] == ["1"]
        assert (
            await client.post(f"/api/models/{MODEL}/unload", json={"triton_id": tid})
        ).status_code == 200
    assert await _wait(lambda: not ready())
