"""MLServe as a new user drives it, against a real tritonserver.

A real tritonserver is registered as a triton; a python-backend model is uploaded with
``files[]``, loaded there and on the built-in server; per-server metadata is read; inference goes
through an app route with a consumer key using tritonclient; then unload and delete.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

pytestmark = [pytest.mark.ray, pytest.mark.compat]

ADMIN = ("admin", "admin")
ADD_SUB = Path(__file__).resolve().parents[2] / "configs" / "models" / "add_sub"
MODEL = "mls_e2e_add_sub"


def _files(name: str) -> list[tuple[str, tuple[str, bytes]]]:
    config = (ADD_SUB / "config.pbtxt").read_text().replace('name: "add_sub"', f'name: "{name}"')
    return [
        ("files[]", ("config.pbtxt", config.encode())),
        ("files[]", ("1/model.py", (ADD_SUB / "1" / "model.py").read_bytes())),
    ]


def _wait(predicate, timeout_s: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    last = None
    error = ""
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = None
            error = repr(exc)
        if last is True:  # a diagnostic tuple such as (404, text) is truthy: not success
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r} {error}")


def _infer(client: httpclient.InferenceServerClient, headers: dict[str, str]) -> None:
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    inputs = [
        httpclient.InferInput("INPUT0", [2, 4], "FP32"),
        httpclient.InferInput("INPUT1", [2, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)  # binary_data=True (tritonclient's default)
    inputs[1].set_data_from_numpy(b)
    result = client.infer(MODEL, inputs, headers=headers)
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a - b)


@pytest.fixture(scope="module", name="api")
def api_fixture(platform):
    with httpx.Client(base_url=platform.url, auth=ADMIN, timeout=240) as client:
        _wait(lambda: client.get("/api/tritons").status_code == 200, what="admin API")
        yield client


def test_real_triton_and_builtin_through_app_gateway(api, platform, tritonserver):
    # 1. register the real tritonserver (seed "Now" shape: ip + string port)
    resp = api.post("/api/tritons", json={"ip": "127.0.0.1", "port": str(tritonserver.http_port)})
    assert resp.status_code == 201, resp.text
    triton_id = resp.json()["id"]
    listed = {t["id"]: t for t in api.get("/api/tritons").json()["tritons"]}
    assert listed[triton_id]["state"] == "ready"
    assert listed[0]["builtin"] is True

    # 2. upload the model with files[]
    resp = api.post("/api/models", data={"name": MODEL}, files=_files(MODEL))
    assert resp.status_code == 201, resp.text
    model_id = resp.json()["id"]

    # 3. load on the real triton (pushed as config + file overrides) and on the built-in server
    resp = api.post(f"/api/models/{model_id}/load", json={"triton_id": triton_id})
    assert resp.status_code == 200, resp.text
    resp = api.post(f"/api/models/{MODEL}/load", json={"triton_id": 0})
    assert resp.status_code == 200, resp.text
    assert httpclient.InferenceServerClient(tritonserver.url).is_model_ready(MODEL)

    # 4. per-server metadata
    detail = api.get(f"/api/models/{model_id}").json()["data"]
    by_id = {t["id"]: t for t in detail["tritons"]}
    assert set(by_id) == {0, triton_id}
    for view in by_id.values():
        assert view["state"] == "READY", view
        assert view["metadata"]["name"] == MODEL
        assert view["metadata"]["platform"] == "python"
        assert [i["shape"] for i in view["metadata"]["inputs"]] == [[-1, 4], [-1, 4]]
    assert detail["state"] == "READY"
    assert f"127.0.0.1:{tritonserver.http_port}" in detail["servers"]

    # 5. a consumer, an app with a route, membership
    resp = api.post("/api/users", json={"name": "e2e_consumer", "password": "s3cret"})
    assert resp.status_code == 201, resp.text
    key = resp.json()["key"]
    stranger_key = api.post("/api/users", json={"name": "e2e_stranger", "password": "x"}).json()[
        "key"
    ]
    assert api.post("/api/apps", json={"name": "e2e_app", "retries": 2}).status_code == 201
    assert api.post(f"/api/apps/e2e_app/routes/{MODEL}").status_code == 201
    assert api.post("/api/users/e2e_consumer/apps/e2e_app/auth").status_code == 200

    # 6. tritonclient pointed at the app (binary tensors). The route answers at once: the
    # writes above returned only once the gateway enforces them (issue 19: right after another
    # test had warmed the gateway, a 404 here was taken for "route live" and infer then failed).
    gw = httpx.Client(base_url=platform.url, timeout=60)
    r = gw.get(f"/apps/e2e_app/v2/models/{MODEL}/ready", headers={"apikey": key})
    assert r.status_code == 200, r.text
    client = httpclient.InferenceServerClient(
        f"{platform.host_port}/apps/e2e_app", network_timeout=120
    )
    for _ in range(4):
        _infer(client, {"apikey": key})
    # the route URL form works too
    routed = httpclient.InferenceServerClient(
        f"{platform.host_port}/apps/e2e_app/{MODEL}", network_timeout=120
    )
    _infer(routed, {"apikey": key})
    assert routed.is_model_ready(MODEL, headers={"apikey": key})

    # requests are spread over both servers
    upstreams = set()
    body = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
        ]
    }
    # (a node that just failed is tried last for 2 s, e.g. once after the ingress reloaded for
    # the new model app: so look for both within a bounded time, not within the next 6 requests)
    deadline = time.monotonic() + 30
    while len(upstreams) < 2 and time.monotonic() < deadline:
        r = gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": key})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [2, 3, 4, 5]
        upstreams.add(r.headers["x-mlserve-upstream"])
        time.sleep(0.2)
    # the built-in server is reached by HTTP behind the HAProxy ingress, else by the model's handle
    builtin = {platform.host_port, f"serve:p-v2-{MODEL}"}
    assert tritonserver.url in upstreams
    assert len(upstreams - {tritonserver.url}) == 1
    assert upstreams - {tritonserver.url} <= builtin

    # 7. gateway security: no key 401, bad key 401, not a consumer 403, Basic works
    assert gw.post(f"/apps/e2e_app/{MODEL}", json=body).status_code == 401
    assert (
        gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": "wrong"}).status_code == 401
    )
    r = gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": stranger_key})
    assert r.status_code == 403
    assert r.json()["message"] == "You cannot consume this service"
    assert (
        gw.post(f"/apps/e2e_app/{MODEL}", json=body, auth=("e2e_consumer", "s3cret")).status_code
        == 200
    )

    # 8. stats are summed from the servers
    model = api.get(f"/api/models/{model_id}").json()["data"]
    assert model["inference_count"] >= 10
    assert model["version_details"][0]["inference_count"] == model["inference_count"]
    assert model["last_inference"] is not None

    # 9. unload from the real triton: its state changes, the gateway stops sending there
    resp = api.post(f"/api/models/{model_id}/unload", json={"triton_id": triton_id})
    assert resp.status_code == 200, resp.text
    real = httpclient.InferenceServerClient(tritonserver.url)
    _wait(lambda: not real.is_model_ready(MODEL), what="unload on the real triton")
    detail = api.get(f"/api/models/{model_id}").json()["data"]
    assert [t["id"] for t in detail["tritons"]] == [0]

    def only_builtin():
        r = gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": key})
        return r.headers.get("x-mlserve-upstream") in builtin

    _wait(only_builtin, what="gateway routing table refreshed")
    time.sleep(1.5)  # one more refresh period: the round robin must not find the triton again
    for _ in range(3):
        r = gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": key})
        assert r.status_code == 200
        assert r.headers["x-mlserve-upstream"] in builtin
    tritons = {t["id"]: t for t in api.get("/api/tritons").json()["tritons"]}
    assert MODEL not in tritons[triton_id]["models"]
    assert MODEL in tritons[0]["models"]

    # 10. delete the model: unloaded everywhere first
    assert api.delete(f"/api/models/{model_id}").status_code == 200
    _wait(
        lambda: (
            gw.post(f"/apps/e2e_app/{MODEL}", json=body, headers={"apikey": key}).status_code == 404
        ),
        what="route gone with the model",
    )
    assert api.delete(f"/api/tritons/{triton_id}").status_code == 200
