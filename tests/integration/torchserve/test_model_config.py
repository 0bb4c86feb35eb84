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
        ("deviceType: gpu\n", "the platform runs TorchServe handlers on CPU only"),
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
