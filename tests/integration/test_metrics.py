"""``/metrics``: Triton/TorchServe, job and API metrics.

Triton/TorchServe names come from the stats actor, jobs and API counters from the app.
"""

from deployments.contracts.stats import StatsBook
from tests.model_repos import write_add_sub


async def test_metrics_export_triton_names_and_api_counters(client, gateway):
    write_add_sub(client.app.state.settings.store_root / "models")
    assert (await client.post("/v2/repository/models/add_sub/load")).status_code == 200
    book = StatsBook()
    book.request(
        "add_sub", 1, ok=True, total_ns=3_000_000, queue_ns=1000, infer_ns=2_000_000, batch=4
    )
    book.execution("add_sub", 1, batch_size=4, infer_ns=2_000_000)
    book.request("add_sub", 1, ok=False, total_ns=1_000_000)
    book.request("ts:echo", 1, ok=True, total_ns=5_000_000, queue_ns=7_000)
    book.request("wf:wf1:pre", 0, ok=True, total_ns=1_000_000)
    gateway.stats = book.drain()
    await client.get("/v2/models/nope")
    text = (await client.get("/metrics")).text
    assert 'nv_inference_request_success{model="add_sub",version="1"} 1.0' in text
    assert 'nv_inference_request_failure{model="add_sub",reason="OTHER",version="1"} 1.0' in text
    assert 'nv_inference_count{model="add_sub",version="1"} 4.0' in text
    assert 'nv_inference_exec_count{model="add_sub",version="1"} 1.0' in text
    assert 'nv_inference_request_duration_us{model="add_sub",version="1"} 3000.0' in text
    assert (
        'platform_inference_request_duration_seconds_bucket{le="0.005",model="add_sub",version="1"}'
        " 2.0" in text
    )
    assert 'ts_inference_requests_total{model_name="echo",model_version="1"} 1.0' in text
    assert 'ts_queue_latency_microseconds{model_name="echo",model_version="1"} 7.0' in text
    assert (
        'platform_workflow_node_requests_total{node="pre",outcome="success",workflow="wf1"} 1.0'
        in text
    )
    assert (
        'platform_api_requests_total{method="GET",route="/v2/models/{model_name}",status="404"} 1.0'
        in text
    )
    assert 'platform_serve_applications{owner="v2"} 1.0' in text
    assert 'platform_registered_models{state="loaded"} 1.0' in text


async def test_loaded_model_series_exist_before_first_request(client):
    write_add_sub(client.app.state.settings.store_root / "models")
    await client.post("/v2/repository/models/add_sub/load")
    text = (await client.get("/metrics")).text
    assert 'nv_inference_request_success{model="add_sub",version="1"} 0.0' in text


async def test_job_metrics_from_the_database(client):
    wf = (await client.post("/torc-service/v1/workflows", json={"name": "w", "user": "u"})).json()
    for i in range(3):
        await client.post(
            "/torc-service/v1/jobs",
            json={"workflow_id": wf["id"], "name": f"j{i}", "command": "true"},
        )
    await client.post(f"/torc-service/v1/workflows/{wf['id']}/initialize_jobs", json={})
    text = (await client.get("/metrics")).text
    assert f'torc_jobs{{status="ready",workflow_id="{wf["id"]}"}} 3.0' in text
    assert f'torc_workflow_progress_ratio{{workflow_id="{wf["id"]}"}} 0.0' in text
    assert 'torc_jobs_all{status="ready"} 3.0' in text


async def test_only_the_newest_workflows_get_their_own_series(client):
    ids = []
    for n in range(3):
        wf = (await client.post("/torc-service/v1/workflows", json={"name": f"w{n}", "user": "u"}))
        ids.append(wf.json()["id"])
        await client.post(
            "/torc-service/v1/jobs", json={"workflow_id": ids[-1], "name": "j", "command": "true"}
        )
    from control_plane.metrics import StateCollector

    collector = StateCollector(client.app.state.session_factory, client.app.state.gateway, 2)
    samples = [s for family in collector.collect() for s in family.samples]
    per_workflow = {s.labels["workflow_id"] for s in samples if s.name == "torc_jobs"}
    assert per_workflow == {str(i) for i in ids[1:]}  # the newest two only
    every = sum(s.value for s in samples if s.name == "torc_jobs_all")
    assert every == 3  # every workflow's jobs, in the aggregate


async def test_status_shows_nodes_apps_and_reconciler(client, gateway):
    write_add_sub(client.app.state.settings.store_root / "models")
    await client.post("/v2/repository/models/add_sub/load")
    client.app.state.reconciler.run_once()
    body = (await client.get("/status")).json()
    assert body["ray"]["reachable"]
    assert body["ray"]["nodes"][0]["resources_total"]["CPU"] == 2.0
    app = next(a for a in body["applications"] if a["name"] == "p-v2-add_sub")
    assert app["status"] == "RUNNING"
    assert app["owner"] == "v2"
    assert app["route_prefix"] == "/v2/models/add_sub"
    assert body["reconciler"]["error"] is None


async def test_status_is_refused_to_remote_callers_without_credentials(settings, gateway):
    import httpx

    from control_plane.app import create_app

    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as remote,
    ):
        assert (await remote.get("/status")).status_code in (401, 403)
        assert (await remote.get("/healthz")).status_code == 200
