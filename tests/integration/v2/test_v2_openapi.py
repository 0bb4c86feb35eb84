"""Real ``/v2`` responses validate against the schemas ``/openapi.json`` publishes for them.

The control plane answers the server, repository and all-models statistics routes; a loaded
model's own application answers its metadata, config, ready and infer on the same paths, so
those answers come from ``TritonModelServer`` run as a plain class (no Ray), and are checked
against the document the control plane publishes for those paths.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import ray
import tritonclient.http as httpclient

from deployments.contracts.app_args import TritonModelAppArgs
from deployments.contracts.specs import load_model_spec
from deployments.contracts.stats import VersionStats, triton_model_stats
from deployments.model_server import TritonModelServer
from tests.integration.mlserve.openapi_contract import OpenApiContract
from tests.model_repos import write_add_sub

MAIN_OPERATIONS = {
    "get_server_metadata", "get_server_live", "get_server_ready",
    "post_repository_index", "post_repository_load", "post_repository_unload",
    "get_all_model_stats", "get_model_metadata", "get_model_version_metadata",
    "get_model_config", "get_model_ready", "get_model_stats", "post_model_infer",
}  # fmt: skip


@pytest.fixture(name="contract")
async def contract_fixture(client: httpx.AsyncClient) -> OpenApiContract:
    return await OpenApiContract.fetch(client)


@pytest.fixture(name="model_app")
def model_app_fixture(tmp_path, monkeypatch):
    """The add_sub model's own application (what ``/v2/models/add_sub`` reaches once loaded)."""
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    model = write_add_sub(tmp_path / "repo", versions=(1, 2))
    spec = load_model_spec(model, "add_sub")
    server = TritonModelServer.func_or_class(  # type: ignore[attr-defined]
        TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    )
    server.batching = False  # @serve.batch needs a replica context

    async def asgi(scope, receive, send):
        from starlette.requests import Request

        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://m")
    for backend in server.backends.values():
        backend.finalize()
    server.backends = {}


def _repo(client: httpx.AsyncClient):
    repo = client.app.state.settings.store_root / "models"  # type: ignore[attr-defined]
    repo.mkdir(parents=True, exist_ok=True)
    return repo


async def test_every_v2_operation_documents_its_bodies(contract: OpenApiContract):
    operations = {
        op["operationId"]: op
        for path, ops in contract.doc["paths"].items()
        if path == "/v2" or path.startswith("/v2/")
        for op in ops.values()
    }
    assert set(operations) >= MAIN_OPERATIONS
    for op_id, op in operations.items():
        responses = op["responses"]
        assert "200" in responses, op_id
        assert "422" not in responses, op_id  # malformed input is Triton's 400
        error = responses["4XX"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/V2Error"}, op_id
    index = operations["post_repository_index"]["responses"]["200"]["content"]
    assert index["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/V2RepositoryIndexEntry"
    }
    entry = contract.doc["components"]["schemas"]["V2RepositoryIndexEntry"]
    assert entry["required"] == ["name"]  # the other keys are absent, never null
    assert all("anyOf" not in p for p in entry["properties"].values())
    for op_id in ("post_repository_load", "post_repository_unload", "get_server_live"):
        assert "content" not in operations[op_id]["responses"]["200"], op_id
        assert "requestBody" in operations[op_id] or op_id == "get_server_live"


async def test_server_and_repository_responses_match_the_schema(
    client: httpx.AsyncClient, gateway, contract: OpenApiContract
):
    check = contract.check
    meta = check(await client.get("/v2"), "get_server_metadata")
    assert "model_repository" in meta.body["extensions"]
    check(await client.get("/v2/health/live"), "get_server_live")
    check(await client.get("/v2/health/ready"), "get_server_ready")
    assert check(await client.post("/v2/repository/index", content=b"")).body == []
    write_add_sub(_repo(client))
    never_loaded = check(await client.post("/v2/repository/index"), "post_repository_index")
    assert never_loaded.body == [{"name": "add_sub"}]
    check(await client.post("/v2/repository/models/add_sub/load"), "post_repository_load")
    loaded = check(
        await client.post("/v2/repository/index", content=b'{"ready": true}'),
        "post_repository_index",
    )
    assert loaded.body == [{"name": "add_sub", "state": "READY", "reason": "", "version": "1"}]

    stats = VersionStats()
    stats.inference_count, stats.execution_count, stats.batches = 3, 2, {1: [1, 5, 6, 7]}
    gateway.call_results[("p-v2-add_sub", "stats")] = {
        "model_stats": [triton_model_stats("add_sub", 1, stats)]
    }
    all_stats = check(await client.get("/v2/models/stats"), "get_all_model_stats")
    assert all_stats.body["model_stats"][0]["batch_stats"][0]["batch_size"] == 1

    unload = await client.post(
        "/v2/repository/models/add_sub/unload",
        content=json.dumps({"parameters": {"unload_dependents": False}}),
    )
    check(unload, "post_repository_unload")
    after = check(await client.post("/v2/repository/index"), "post_repository_index")
    assert after.body[0]["reason"] == "unloaded"
    check(await client.post("/v2/repository/models/ghost/unload"), "post_repository_unload")


async def test_error_responses_match_the_schema(client: httpx.AsyncClient, contract):
    check = contract.check
    for resp, op_id, key in (
        (await client.get("/v2/models/ghost"), "get_model_metadata", "404"),
        (await client.get("/v2/models/ghost/versions/1"), "get_model_version_metadata", "404"),
        (await client.get("/v2/models/ghost/config"), "get_model_config", "404"),
        (await client.post("/v2/models/ghost/infer", content=b"{}"), "post_model_infer", "404"),
        (await client.get("/v2/models/ghost/ready"), "get_model_ready", "400"),
        (await client.get("/v2/models/ghost/stats"), "get_model_stats", "400"),
        (await client.post("/v2/repository/models/ghost/load"), "post_repository_load", "4XX"),
        (await client.post("/v2/repository/index", content=b"[1]"), "post_repository_index", "4XX"),
    ):
        assert check(resp, op_id).status_key == key, (op_id, resp.status_code, resp.text)


async def test_model_application_answers_match_the_published_schema(
    model_app: httpx.AsyncClient, contract: OpenApiContract
):
    check = contract.check
    async with model_app as app:
        meta = check(await app.get("/v2/models/add_sub"), "get_model_metadata")
        assert meta.body["versions"] == ["2"]
        check(await app.get("/v2/models/add_sub/versions/2"), "get_model_version_metadata")
        config = check(await app.get("/v2/models/add_sub/config"), "get_model_config")
        assert config.body["name"] == "add_sub"
        check(await app.get("/v2/models/add_sub/versions/2/config"), "get_model_version_config")
        check(await app.get("/v2/models/add_sub/ready"), "get_model_ready")
        check(await app.get("/v2/models/add_sub/versions/2/ready"), "get_model_version_ready")
        payload = {
            "id": "r1",
            "inputs": [
                {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
            ],
        }
        infer = check(await app.post("/v2/models/add_sub/infer", json=payload), "post_model_infer")
        assert infer.body["id"] == "r1"
        inputs = [httpclient.InferInput(n, [1, 4], "FP32") for n in ("INPUT0", "INPUT1")]
        for tensor in inputs:
            tensor.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        body, length = httpclient.InferenceServerClient.generate_request_body(
            inputs, [httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)]
        )
        binary = await app.post(
            "/v2/models/add_sub/versions/2/infer",
            content=body,
            headers={"Inference-Header-Content-Length": str(length)},
        )
        assert check(binary, "post_model_version_infer").status_key == "200"
        bad = await app.post("/v2/models/add_sub/infer", json={"inputs": []})
        assert check(bad, "post_model_infer").status_key == "400"
    stats = triton_model_stats("add_sub", 2, None)  # what the app's /stats lists per version
    contract.check_body("get_model_stats", 200, {"model_stats": [stats]})


async def test_the_flows_above_cover_the_main_operations(
    client: httpx.AsyncClient, gateway, model_app: httpx.AsyncClient, contract: OpenApiContract
):
    await test_server_and_repository_responses_match_the_schema(client, gateway, contract)
    await test_error_responses_match_the_schema(client, contract)
    await test_model_application_answers_match_the_published_schema(model_app, contract)
    assert MAIN_OPERATIONS - contract.seen == set()
