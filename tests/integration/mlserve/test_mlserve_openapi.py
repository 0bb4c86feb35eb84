"""Real ``/api`` responses validate against the schemas ``/openapi.json`` publishes for them."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.mlserve.conftest import add_sub_files, create_model
from tests.integration.mlserve.openapi_contract import OpenApiContract

MAIN_OPERATIONS = {
    "apiTritonList", "apiTritonCreate", "apiTritonGet", "apiTritonUpdate", "apiTritonDelete",
    "apiModelList", "apiModelCreate", "apiModelGet", "apiModelUpdate", "apiModelDelete",
    "apiModelLoad", "apiModelUnload",
    "apiModelVersionList", "apiModelVersionCreate", "apiModelVersionDelete",
    "apiModelVersionDeleteByQuery",
    "apiUserList", "apiUserCreate", "apiUserGet", "apiUserUpdate", "apiUserDelete",
    "apiUserAppList", "apiUserAppAuth", "apiUserAppUnauth",
    "apiAppList", "apiAppCreate", "apiAppGet", "apiAppUpdate", "apiAppDelete",
    "apiAppRoutesList", "apiAppRoutesImport", "apiAppRoutesRemove",
    "apiAppConsumersList", "apiAppConsumersAdd", "apiAppConsumersRemove",
}  # fmt: skip


@pytest.fixture(name="contract")
async def contract_fixture(client: httpx.AsyncClient) -> OpenApiContract:
    return await OpenApiContract.fetch(client)


def _api_operations(contract: OpenApiContract) -> dict[str, dict]:
    return {
        op["operationId"]: op
        for path, ops in contract.doc["paths"].items()
        if path.startswith("/api/")
        for op in ops.values()
    }


async def test_every_api_operation_documents_its_bodies(contract: OpenApiContract):
    operations = _api_operations(contract)
    assert set(operations) >= MAIN_OPERATIONS
    for op_id, op in operations.items():
        responses = op["responses"]
        success = [k for k in responses if k.startswith("2")]
        assert success, op_id
        for key in [*success, "4XX", "5XX"]:
            schema = responses[key]["content"]["application/json"]["schema"]
            assert schema.get("$ref", "").startswith("#/components/schemas/"), (op_id, key)
        # Request validation is a 400 with MLServe's body, never FastAPI's 422.
        assert "422" not in responses, op_id
    schemas = contract.doc["components"]["schemas"]
    for name in _referenced(schemas, [op["responses"] for op in operations.values()]):
        for prop, spec in schemas[name].get("properties", {}).items():
            assert spec.get("description"), f"{name}.{prop} has no description"


def _referenced(schemas: dict[str, dict], roots: list) -> set[str]:
    """Names of the component schemas reachable from ``roots`` through ``$ref``s."""
    found: set[str] = set()
    stack: list = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    stack.append(schemas[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


async def test_the_check_rejects_a_body_the_schema_does_not_describe(
    admin: httpx.AsyncClient, contract: OpenApiContract
):
    body = contract.check(await admin.get("/api/tritons/0"), "apiTritonGet").body
    for broken in (
        {k: v for k, v in body.items() if k != "data"},  # a required key missing
        {**body, "extra": 1},  # a key the schema does not have
        {**body, "port": 8080},  # port is a string on the wire
    ):
        with pytest.raises(AssertionError):
            contract.check_body("apiTritonGet", 200, broken)


async def test_triton_and_user_responses_match_the_schema(
    admin: httpx.AsyncClient, contract: OpenApiContract
):
    check = contract.check
    check(await admin.get("/api/tritons"), "apiTritonList")
    port = free_port()
    created = check(
        await admin.post("/api/tritons", json={"ip": "127.0.0.1", "port": str(port)}),
        "apiTritonCreate",
    )
    assert created.status_key == "201"
    tid = created.body["id"]
    got = check(await admin.get(f"/api/tritons/{tid}"), "apiTritonGet")
    assert got.body["data"]["state"] == "offline"
    check(await admin.patch(f"/api/tritons/{tid}", json={"gpus": 2}), "apiTritonUpdate")
    check(await admin.get("/api/tritons/0"), "apiTritonGet")
    dup = check(await admin.post("/api/tritons", json={"ip": "127.0.0.1", "port": port}))
    assert (dup.status_key, dup.body["code"]) == ("4XX", "triton_exists")
    assert check(await admin.post("/api/tritons", json={"port": 1})).status_key == "4XX"
    assert check(await admin.get("/api/tritons/9999")).status_key == "4XX"

    user = check(
        await admin.post("/api/users", json={"name": "u1", "password": "pw", "tags": "a,b"}),
        "apiUserCreate",
    )
    check(await admin.get("/api/users"), "apiUserList")
    check(await admin.get("/api/users/u1"), "apiUserGet")
    assert check(await admin.patch("/api/users/u1", json={"tags": []})).body["key"] is None
    rotated = check(await admin.patch("/api/users/u1", json={"rotate_key": True}))
    assert rotated.body["key"]
    as_user = await admin.get("/api/users/u1", auth=None, headers={"apikey": rotated.body["key"]})
    check(as_user, "apiUserGet")
    check(await admin.get("/api/users/u1/apps"), "apiUserAppList")
    denied = check(await admin.get("/api/users", auth=None))
    assert (denied.status_key, denied.body["code"]) == ("4XX", "unauthorized")
    check(await admin.delete(f"/api/users/{user.body['id']}"), "apiUserDelete")
    check(await admin.delete(f"/api/tritons/{tid}"), "apiTritonDelete")
    assert check(await admin.delete("/api/tritons/0")).status_key == "4XX"


async def test_model_and_version_responses_match_the_schema(
    admin: httpx.AsyncClient, contract: OpenApiContract
):
    check = contract.check
    created = check(
        await admin.post("/api/models", data={"name": "m1"}, files=add_sub_files("m1")),
        "apiModelCreate",
    )
    assert created.status_key == "201"
    check(await admin.get("/api/models"), "apiModelList")
    check(await admin.get("/api/models/m1"), "apiModelGet")
    check(await admin.patch("/api/models/m1", json={"description": "d"}), "apiModelUpdate")
    check(await admin.get("/api/models/m1/versions"), "apiModelVersionList")

    plain = check(
        await admin.post("/api/models/m1/versions", files=[("Files[]", ("model.py", b"x = 1\n"))]),
        "apiModelVersionCreate",
    )
    assert (plain.status_key, plain.body) == ("201", {"version": 2, "status": "ok"})
    data = b"0123456789"
    first = check(
        await admin.post(
            "/api/models/m1/versions",
            data={"version": "7", "offset": "0"},
            files=[("Files[]", ("model.py", data[:4]))],
        )
    )
    assert (first.status_key, first.body["status"], first.body["offset"]) == ("202", "partial", 4)
    mismatch = check(
        await admin.post(
            "/api/models/m1/versions",
            data={"version": "7", "offset": "1"},
            files=[("Files[]", ("model.py", data[4:]))],
        )
    )
    assert (mismatch.status_key, mismatch.body["offset"]) == ("4XX", 4)
    check(await admin.get("/api/models/m1/versions"), "apiModelVersionList")  # an upload shows
    last = check(
        await admin.post(
            "/api/models/m1/versions",
            data={"version": "7", "offset": "4", "check": "md5:" + hashlib.md5(data).hexdigest()},
            files=[("Files[]", ("model.py", data[4:]))],
        )
    )
    assert last.status_key == "201"

    check(await admin.post("/api/models/m1/load", json={"triton_id": 0}), "apiModelLoad")
    detail = check(await admin.get("/api/models/m1"), "apiModelGet")
    assert [t["id"] for t in detail.body["data"]["tritons"]] == [0]
    check(await admin.get("/api/models/m1?triton_id=builtin"), "apiModelGet")
    check(await admin.get("/api/tritons"), "apiTritonList")  # the built-in one lists m1
    check(await admin.post("/api/models/m1/unload", json={"triton_id": 0}), "apiModelUnload")
    check(await admin.delete("/api/models/m1/versions/7"), "apiModelVersionDelete")
    check(await admin.delete("/api/models/m1/versions?version=2"), "apiModelVersionDeleteByQuery")
    assert check(await admin.delete("/api/models/m1/versions?version=1")).status_key == "4XX"
    assert check(await admin.post("/api/models/m1/load", json={})).status_key == "4XX"
    check(await admin.delete("/api/models/m1"), "apiModelDelete")
    assert check(await admin.get("/api/models/m1")).status_key == "4XX"


async def test_app_responses_match_the_schema(admin: httpx.AsyncClient, contract: OpenApiContract):
    check = contract.check
    await create_model(admin, "m1")
    await admin.post("/api/users", json={"name": "u1", "password": "pw"})
    check(await admin.post("/api/apps", json={"name": "a1"}), "apiAppCreate")
    check(await admin.post("/api/apps", json={"name": "a2", "host": "h", "port": "9"}))
    check(await admin.get("/api/apps"), "apiAppList")
    check(await admin.get("/api/apps/a1"), "apiAppGet")
    check(await admin.patch("/api/apps/a2", json={"host": "", "retries": 1}), "apiAppUpdate")
    new_route = check(await admin.post("/api/apps/a1/routes/m1"), "apiAppRoutesImport")
    assert new_route.status_key == "201"
    again = check(await admin.post("/api/apps/a1/routes/m1", json={"paths": ["/x"]}))
    assert again.status_key == "200"
    check(await admin.get("/api/apps/a1/routes"), "apiAppRoutesList")
    check(await admin.post("/api/apps/a1/consumers/u1"), "apiAppConsumersAdd")
    check(await admin.get("/api/apps/a1/consumers"), "apiAppConsumersList")
    check(await admin.post("/api/users/u1/apps/a2/auth"), "apiUserAppAuth")
    check(await admin.get("/api/apps/a1"), "apiAppGet")  # with a route and a consumer
    check(await admin.get("/api/users/u1/apps"), "apiUserAppList")
    check(await admin.post("/api/users/u1/apps/a2/unauth"), "apiUserAppUnauth")
    check(await admin.delete("/api/apps/a1/consumers/u1"), "apiAppConsumersRemove")
    check(await admin.delete("/api/apps/a1/routes/m1"), "apiAppRoutesRemove")
    assert check(await admin.post("/api/apps/a1/routes/nope")).status_key == "4XX"
    check(await admin.delete("/api/apps/a2"), "apiAppDelete")
    check(await admin.delete("/api/apps/a1"), "apiAppDelete")
    assert check(await admin.get("/api/apps/a1")).status_key == "4XX"


async def test_the_flows_above_cover_the_main_operations(
    admin: httpx.AsyncClient, contract: OpenApiContract
):
    await test_triton_and_user_responses_match_the_schema(admin, contract)
    await test_model_and_version_responses_match_the_schema(admin, contract)
    await test_app_responses_match_the_schema(admin, contract)
    assert MAIN_OPERATIONS - contract.seen == set()
