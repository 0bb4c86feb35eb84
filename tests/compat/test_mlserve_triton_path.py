"""A triton registered with a ``path`` the platform can write.

The model directory is copied into its repository and loaded by name (no file overrides),
version pins included.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import tritonclient.http as httpclient

from control_plane.app import create_app

pytestmark = pytest.mark.compat

ADD_SUB = Path(__file__).resolve().parents[2] / "configs" / "models" / "add_sub"
MODEL = "mls_path_model"


def _files() -> list[tuple[str, tuple[str, bytes]]]:
    config = (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{MODEL}"')
    code = (ADD_SUB / "1" / "model.py").read_bytes()
    return [
        ("files[]", ("config.pbtxt", config.encode())),
        ("files[]", ("1/model.py", code)),
        ("files[]", ("2/model.py", code)),
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_load_through_a_shared_model_repository(settings, gateway, tritonserver):
    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    client = httpx.AsyncClient(transport=transport, base_url="http://t", auth=("admin", "admin"))
    async with app.router.lifespan_context(app), client:
        body = {
            "host": "127.0.0.1",
            "port": tritonserver.http_port,
            "path": str(tritonserver.model_repo),
        }
        tid = (await client.post("/api/tritons", json=body)).json()["id"]
        assert (
            await client.post("/api/models", data={"name": MODEL}, files=_files())
        ).status_code == 201
        resp = await client.post(f"/api/models/{MODEL}/load", json={"triton_id": tid})
        assert resp.status_code == 200, resp.text
        assert (tritonserver.model_repo / MODEL / "2" / "model.py").is_file()
        real = httpclient.InferenceServerClient(tritonserver.url)
        assert real.get_model_metadata(MODEL)["versions"] == ["2"]  # latest:1 by default
        resp = await client.post(f"/api/models/{MODEL}/load", json={"triton_id": tid, "version": 1})
        assert resp.status_code == 200, resp.text
        assert real.get_model_metadata(MODEL)["versions"] == ["1"]
        detail = (await client.get(f"/api/models/{MODEL}")).json()["data"]
        assert detail["tritons"][0]["metadata"]["versions"] == ["1"]
        assert (
            await client.post(f"/api/models/{MODEL}/unload", json={"triton_id": tid})
        ).status_code == 200
