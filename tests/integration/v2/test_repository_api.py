"""The v2 repository and fallback endpoints on the control plane (fake Serve gateway, real DB)."""

import base64
import json

from control_plane.services.reconciler import reconcile_once
from tests.fakes import placeholder_spec
from tests.model_repos import ADD_SUB_MODEL, write_add_sub


def _repo(client):
    repo = client.app.state.settings.store_root / "models"
    repo.mkdir(parents=True, exist_ok=True)
    return repo


async def test_load_records_a_serve_app_routed_at_the_model(client, gateway):
    write_add_sub(_repo(client))
    resp = await client.post("/v2/repository/models/add_sub/load")  # no body, no content type
    assert resp.status_code == 200, resp.text
    spec = gateway.apps["p-v2-add_sub"]
    assert spec.route_prefix == "/v2/models/add_sub"
    assert spec.builder == "deployments.model_server:build_triton_model"
    assert spec.args.options["ray_actor_options"] == {"num_cpus": 0.0, "num_gpus": 0.0}
    index = (await client.post("/v2/repository/index", content=b"")).json()
    assert index == [{"name": "add_sub", "state": "READY", "reason": "", "version": "1"}]
    assert (await client.get("/v2/health/ready")).status_code == 200


async def test_unload_removes_the_app_and_index_says_unloaded(client, gateway):
    write_add_sub(_repo(client))
    await client.post("/v2/repository/models/add_sub/load")
    resp = await client.post("/v2/repository/models/add_sub/unload",
                             content=json.dumps({"parameters": {"unload_dependents": False}}))
    assert resp.status_code == 200
    assert "p-v2-add_sub" not in gateway.apps
    index = (await client.post("/v2/repository/index")).json()
    assert index[0]["state"] == "UNAVAILABLE"
    assert index[0]["reason"] == "unloaded"
    meta = await client.get("/v2/models/add_sub")
    assert meta.status_code == 404
    assert meta.json() == {
        "error": "Request for unknown model: 'add_sub' has no available versions"
    }


async def test_unknown_model_errors_use_triton_texts(client):
    resp = await client.get("/v2/models/ghost")
    assert resp.status_code == 404
    assert resp.json()["error"] == "Request for unknown model: 'ghost' is not found"
    assert (await client.post("/v2/models/ghost/infer", content=b"{}")).status_code == 404
    assert (await client.get("/v2/models/ghost/ready")).status_code == 400
    stats = await client.get("/v2/models/ghost/stats")
    assert stats.status_code == 400
    assert "not available" in stats.json()["error"]
    assert (await client.post("/v2/repository/models/ghost/unload")).status_code == 200


async def test_load_errors_are_400_with_messages(client):
    repo = _repo(client)
    resp = await client.post("/v2/repository/models/nowhere/load")
    assert resp.status_code == 400
    assert "failed to poll from model repository" in resp.json()["error"]
    model = write_add_sub(repo, name="broken")
    (model / "config.pbtxt").write_text("this is not pbtxt {")
    resp = await client.post("/v2/repository/models/broken/load")
    assert resp.status_code == 400
    assert "failed to parse config.pbtxt" in resp.json()["error"]
    resp = await client.post("/v2/repository/models/broken/load", content=b"{not json")
    assert resp.status_code == 400
    assert "failed to parse the request JSON" in resp.json()["error"]
    resp = await client.post("/v2/repository/models/x/load", content=json.dumps(
        {"parameters": {"file:1/model.py": base64.b64encode(b"x").decode()}}))
    assert resp.status_code == 400
    assert "need a 'config'" in resp.json()["error"]


async def test_load_with_file_override_writes_outside_the_repository(client, gateway):
    config = {
        "backend": "python",
        "max_batch_size": 0,
        "input": [{"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("INPUT0", "INPUT1")],
        "output": [
            {"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("OUTPUT0", "OUTPUT1")
        ],
    }
    body = {"parameters": {"config": json.dumps(config),
                           "file:1/model.py": base64.b64encode(ADD_SUB_MODEL.encode()).decode()}}
    resp = await client.post("/v2/repository/models/pushed/load", content=json.dumps(body))
    assert resp.status_code == 200, resp.text
    store = client.app.state.settings.store_root
    assert (store / "overrides" / "pushed" / "1" / "model.py").read_text() == ADD_SUB_MODEL
    assert gateway.apps["p-v2-pushed"].args.model_dir == str(store / "overrides" / "pushed")
    evil = {"parameters": {"config": json.dumps(config), "file:../../evil.py": "eA=="}}
    resp = await client.post("/v2/repository/models/pushed2/load", content=json.dumps(evil))
    assert resp.status_code == 400
    assert not (store.parent / "evil.py").exists()


async def test_gpu_model_without_gpus_is_pending_with_reason(client, gateway):
    from tests.model_repos import write_torchscript_linear

    write_torchscript_linear(_repo(client), kind="KIND_GPU")
    resp = await client.post("/v2/repository/models/linear_ts/load")
    assert resp.status_code == 400
    assert "needs 1 GPU per replica" in resp.json()["error"]
    assert gateway.apps["p-v2-linear_ts"].args.options["ray_actor_options"]["num_gpus"] == 1.0
    gateway.resources["GPU"] = 1.0
    resp = await client.post("/v2/repository/models/linear_ts/load")
    assert resp.status_code == 200


async def test_reconciler_restores_apps_lost_by_ray(client, gateway):
    write_add_sub(_repo(client))
    await client.post("/v2/repository/models/add_sub/load")
    gateway.apps.clear()  # Ray lost everything (cluster restart)
    gateway.apps["p-v2-stale"] = placeholder_spec("p-v2-stale", "/x")
    gateway.apps["user-app"] = placeholder_spec("user-app", "/y")
    with client.app.state.session_factory() as session:
        report = reconcile_once(session, gateway)
    assert "p-v2-add_sub" in report.applied
    assert report.deleted == ["p-v2-stale"]
    assert "user-app" in gateway.apps  # never touches apps the platform does not own


async def test_server_metadata_and_live(client):
    meta = (await client.get("/v2")).json()
    assert "model_repository" in meta["extensions"]
    assert (await client.get("/v2/health/live")).status_code == 200


async def test_startup_models_are_loaded_on_start(tmp_path, db_url):
    import httpx

    from control_plane.app import create_app
    from control_plane.settings import Settings
    from tests.fakes import FakeServeGateway

    settings = Settings(data_dir=str(tmp_path / "d"), db={"url": db_url},
                        serving={"startup_models": ["add_sub", "missing"]})
    write_add_sub(settings.store_root / "models")
    gateway = FakeServeGateway()
    app = create_app(settings, gateway_factory=lambda: gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            index = {e["name"]: e for e in (await client.post("/v2/repository/index")).json()}
    assert "p-v2-add_sub" in gateway.apps
    assert index["add_sub"]["state"] == "READY"
