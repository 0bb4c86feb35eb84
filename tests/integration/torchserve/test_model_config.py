"""model-config.yaml at registration: honoured keys reach the model, bad values are a 400."""

from __future__ import annotations

import pytest

from control_plane.services.torchserve.apps import model_app
from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

GOOD = """
minWorkers: 1
maxWorkers: 3
batchSize: 4
maxBatchDelay: 7
responseTimeout: 9
startupTimeout: 30
jobQueueSize: 5
deviceType: cpu
maxRetryTimeoutInSec: 60
"""


async def test_register_applies_model_config_yaml(client, gateway, settings, tmp_path):
    store = settings.store_root / "model-store"
    make_mar(store, "cfg", ECHO_HANDLER, config=GOOD, work=tmp_path / "cfg")
    resp = await client.post("/models", params={"url": "cfg.mar"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": 'Model "cfg" Version: 1.0 registered with 1 initial workers'}
    (desc,) = (await client.get("/models/cfg")).json()
    assert (desc["minWorkers"], desc["maxWorkers"]) == (1, 3)
    assert (desc["batchSize"], desc["maxBatchDelay"], desc["responseTimeout"]) == (4, 7, 9)
    args = gateway.apps[model_app("cfg")].args
    assert args.max_queued_requests == 5
    version = args.versions["1.0"]
    assert (version.batch_size, version.max_batch_delay, version.response_timeout) == (4, 7, 9)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("deviceType: tpu\n", "Got 'tpu' for deviceType in model-config.yaml; must be cpu or gpu"),
        (
            "responseTimeout: -3\n",
            "Got -3 for responseTimeout in model-config.yaml; must be at least 1",
        ),
        (
            "deviceType: gpu\n",
            "model 'bad' uses deviceType gpu and needs 1 GPU per replica but the cluster has 0 "
            "GPUs; register it when a GPU node has joined (or set "
            "CP_SERVING__GPU_FALLBACK_TO_CPU=true)",
        ),
        ("minWorkers: 2\nmaxWorkers: 1\n", "Got maxWorkers 1 < minWorkers 2 in model-config.yaml"),
    ],
)
async def test_register_refuses_bad_model_config_with_400(
    client, gateway, settings, tmp_path, config, message
):
    store = settings.store_root / "model-store"
    make_mar(store, "bad", ECHO_HANDLER, config=config, work=tmp_path / "bad")
    resp = await client.post("/models", params={"url": "bad.mar", "initial_workers": 1})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["type"] == "BadRequestException"
    assert message in body["message"]
    assert (await client.get("/models")).json() == {"models": []}
    assert model_app("bad") not in gateway.apps


GPU = "deviceType: gpu\nminWorkers: 1\n"


def _with(settings, group: str, **values):
    return settings.model_copy(update={group: getattr(settings, group).model_copy(update=values)})


async def _register_gpu_model(settings, gateway, tmp_path):
    import httpx

    from control_plane.app import create_app

    make_mar(
        settings.store_root / "model-store", "gpum", ECHO_HANDLER, config=GPU, work=tmp_path / "g"
    )
    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        resp = await client.post("/models", params={"url": "gpum.mar"})
        desc = (await client.get("/models/gpum")).json() if resp.status_code == 200 else None
    return resp, desc


async def test_gpu_model_reserves_gpus_per_replica_on_a_gpu_cluster(settings, gateway, tmp_path):
    gateway.resources = {"GPU": 2.0, "CPU": 8.0}
    ts = _with(settings, "torchserve", gpus_per_replica=0.5)
    resp, desc = await _register_gpu_model(ts, gateway, tmp_path)
    assert resp.status_code == 200, resp.text
    args = gateway.apps[model_app("gpum")].args
    assert args.num_gpus == 0.5
    (model,) = desc
    assert model["deviceType"] == "gpu"
    assert all(w["gpu"] for w in model["workers"])
    from deployments.ts_model import deployment_options

    options = deployment_options(1, 1, 64, None, args.num_gpus)
    assert options["ray_actor_options"] == {"num_cpus": 0, "num_gpus": 0.5}


async def test_gpu_model_falls_back_to_cpu_when_configured(settings, gateway, tmp_path):
    ts = _with(settings, "serving", gpu_fallback_to_cpu=True)
    resp, desc = await _register_gpu_model(ts, gateway, tmp_path)
    assert resp.status_code == 200, resp.text
    assert gateway.apps[model_app("gpum")].args.num_gpus == 0
    assert desc[0]["deviceType"] == "cpu"
    assert not any(w["gpu"] for w in desc[0]["workers"])


async def test_number_of_gpu_zero_runs_gpu_models_on_cpu(settings, gateway, tmp_path):
    gateway.resources = {"GPU": 4.0}
    ts = _with(settings, "torchserve", number_of_gpu=0)
    resp, _desc = await _register_gpu_model(ts, gateway, tmp_path)
    assert resp.status_code == 200, resp.text
    assert gateway.apps[model_app("gpum")].args.num_gpus == 0


def test_describe_row_shows_gpu_workers(db_url):
    from datetime import UTC, datetime

    from control_plane.db.tables.torchserve import TorchServeModel
    from control_plane.services.torchserve.views import describe_row

    row = TorchServeModel(
        name="m",
        version="1.0",
        url="m.mar",
        archive_path="a",
        model_dir="d",
        handler="h",
        runtime="python",
        batch_size=1,
        max_batch_delay=100,
        response_timeout=120,
        startup_timeout=120,
        min_workers=1,
        max_workers=1,
        num_gpus=0.5,
        loaded_at_startup=False,
        updated_at=datetime.now(UTC),
    )
    read = describe_row(row, replicas=2)
    assert read.device_type == "gpu"
    assert [(w.gpu, w.gpu_usage) for w in read.workers] == [(True, "gpus per worker: 0.5")] * 2
    row.num_gpus = 0.0
    assert [w.gpu for w in describe_row(row, replicas=1).workers] == [False]
