"""Workflow model nodes get the GPUs their .mar's model-config asks for; bad input is a 4xx."""

from __future__ import annotations

import httpx
import pytest

from control_plane.app import create_app
from control_plane.services.torchserve.apps import workflow_app
from deployments.ts_model import deployment_options
from tests.integration.torchserve.builders import (
    ECHO_HANDLER,
    PIPELINE_FUNCTIONS,
    make_mar,
    make_war,
)
from tests.integration.torchserve.test_model_config import _with
from tests.integration.torchserve.test_models_api import ts_error

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

SPEC = """
models:
  min-workers: 1
  max-workers: 1
  retry-attempts: 0
  timeout-ms: 5000
  tiny:
    url: tiny.mar
dag:
  pre: [tiny]
  tiny: [post]
"""


async def _register(settings, gateway, tmp_path, config: str | None, **params):
    make_mar(
        settings.store_root / "model-store",
        "tiny",
        ECHO_HANDLER,
        config=config,
        work=tmp_path / "m",
    )
    make_war(
        settings.store_root / "wf-store", "gpuwf", SPEC, PIPELINE_FUNCTIONS, work=tmp_path / "w"
    )
    app = create_app(settings, gateway_factory=lambda: gateway)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        resp = await client.post("/workflows", params={"url": "gpuwf.war", **params})
        listing = (await client.get("/workflows")).json()
    return resp, listing


async def test_gpu_model_node_gets_its_own_deployment_with_num_gpus(settings, gateway, tmp_path):
    gateway.resources = {"GPU": 1.0, "CPU": 4.0}
    ts = _with(settings, "torchserve", gpus_per_replica=0.25)
    resp, _ = await _register(ts, gateway, tmp_path, "deviceType: gpu\n")
    assert resp.status_code == 200, resp.text
    args = gateway.apps[workflow_app("gpuwf")].args
    assert set(args.deployments) == {"tiny"}  # auto mode: a GPU node is not fused
    assert args.deployments["tiny"].num_gpus == 0.25
    assert args.driver_num_gpus == 0
    options = deployment_options(1, 1, 64, num_gpus=args.deployments["tiny"].num_gpus)
    assert options["ray_actor_options"] == {"num_cpus": 0, "num_gpus": 0.25}


async def test_fused_gpu_node_puts_the_gpu_on_the_driver(settings, gateway, tmp_path):
    gateway.resources = {"GPU": 2.0}
    resp, _ = await _register(settings, gateway, tmp_path, "deviceType: gpu\n", execution="fused")
    assert resp.status_code == 200, resp.text
    args = gateway.apps[workflow_app("gpuwf")].args
    assert set(args.inline) == {"tiny"}
    assert args.driver_num_gpus == 1.0


async def test_cpu_node_stays_fused_without_gpus(settings, gateway, tmp_path):
    resp, _ = await _register(settings, gateway, tmp_path, "deviceType: cpu\n")
    assert resp.status_code == 200, resp.text
    args = gateway.apps[workflow_app("gpuwf")].args
    assert set(args.inline) == {"tiny"}
    assert args.driver_num_gpus == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "deviceType: gpu\n",
            "model 'gpuwf__tiny' uses deviceType gpu and needs 1 GPU per replica but the "
            "cluster has 0 GPUs",
        ),
        ("deviceType: tpu\n", "Workflow node tiny: Got 'tpu' for deviceType"),
        ("responseTimeout: -1\n", "Workflow node tiny: Got -1 for responseTimeout"),
        ("parallelType: pp\nparallelLevel: 2\n", "model parallelism (torchrun workers)"),
    ],
)
async def test_bad_node_model_config_is_a_400(settings, gateway, tmp_path, config, message):
    resp, listing = await _register(settings, gateway, tmp_path, config)
    ts_error(resp, 400, "BadRequestException")
    assert message in resp.json()["message"]
    assert listing["workflows"] == []
    assert workflow_app("gpuwf") not in gateway.apps


async def test_garbage_war_is_an_invalid_workflow(client, settings):
    store = settings.store_root / "wf-store"
    store.mkdir(parents=True, exist_ok=True)
    (store / "junk.war").write_bytes(b"this is not a workflow archive")
    resp = await client.post("/workflows", params={"url": "junk.war"})
    ts_error(resp, 500, "InvalidWorkflowException")
    assert (await client.get("/workflows")).json()["workflows"] == []
