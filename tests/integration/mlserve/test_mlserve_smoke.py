from __future__ import annotations

from tests.integration.mlserve.conftest import create_model


async def test_admin_api_smoke(admin):
    resp = await admin.get("/api/tritons")
    assert resp.status_code == 200, resp.text
    print(resp.json())
    model_id = await create_model(admin)
    resp = await admin.get(f"/api/models/{model_id}")
    assert resp.status_code == 200, resp.text
    print(resp.json())
    resp = await admin.get("/api/models/add_sub/versions")
    print(resp.json())
    resp = await admin.post("/api/users", json={"name": "bob", "password": "pw"})
    assert resp.status_code == 201, resp.text
    resp = await admin.post("/api/apps", json={"name": "app1"})
    assert resp.status_code == 201, resp.text
    resp = await admin.post("/api/apps/app1/routes/add_sub")
    assert resp.status_code == 201, resp.text
    resp = await admin.post("/api/users/bob/apps/app1/auth")
    assert resp.status_code == 200, resp.text
    resp = await admin.get("/api/apps/app1")
    print(resp.json())
    resp = await admin.get("/api/users")
    print(resp.json())
