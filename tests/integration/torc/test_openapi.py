"""``/openapi.json`` documents every Torc response, and real responses validate against it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

B = "/torc-service/v1"
OFFER = {"num_cpus": 8, "memory_gb": 16.0, "num_gpus": 0, "num_nodes": 1}


def _closed(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that lists properties.

    The read models pass unknown fields through (``extra="allow"``); closing them here makes a
    field the server sends but the schema does not document fail the test.
    """
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and out.get("additionalProperties", True) is True:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


class Contract:
    """The published document, and a check of real responses against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        schemas = document["components"]["schemas"]
        # Error details carry rule-specific extras (field, value, cycle...): left open.
        self.components = {
            "schemas": {
                name: schema if name == "TorcErrorDetail" else _closed(schema)
                for name, schema in schemas.items()
            }
        }
        self.checked: set[tuple[str, str]] = set()

    def schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The response schema of an operation."""
        responses = self.document["paths"][B + path][method]["responses"]
        return responses[str(status)]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    def check(self, resp: httpx.Response, path: str, method: str, status: int = 200) -> Any:
        """Assert the status and validate the body against the published schema."""
        assert resp.status_code == status, resp.text
        schema = {**_closed(self.schema(path, method, status)), "components": self.components}
        errors = sorted(
            Draft202012Validator(schema).iter_errors(resp.json()), key=lambda e: list(e.path)
        )
        assert not errors, f"{method.upper()} {path}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors
        )
        self.checked.add((path, method))
        return resp.json()


@pytest.fixture(name="contract")
async def contract_fixture(client: httpx.AsyncClient) -> Contract:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    return Contract(resp.json())


def test_every_torc_operation_documents_its_responses(contract: Contract) -> None:
    operations = [
        (path, method, op)
        for path, item in contract.document["paths"].items()
        if path.startswith(B)
        for method, op in item.items()
    ]
    assert len(operations) > 60
    for path, method, op in operations:
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok.get("$ref") or ok.get("type") or ok.get("anyOf"), (
            f"{method} {path} documents no 200 body"
        )
        for status in ("404", "422"):
            error = op["responses"][status]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/TorcError"}, (method, path)
    job = contract.document["components"]["schemas"]["JobRead"]
    assert job["properties"]["status"] == {
        "$ref": "#/components/schemas/JobStatus",
        "description": "Where the job is in the state machine.",
    }
    assert all(p.get("description") for p in job["properties"].values())


async def test_real_responses_validate_against_the_published_schemas(
    client: httpx.AsyncClient, contract: Contract
) -> None:
    c, post, get, put = contract.check, client.post, client.get, client.put
    wf = c(await post(f"{B}/workflows", json={"name": "w", "user": "u"}), "/workflows", "post")
    wid = wf["id"]
    c(await get(f"{B}/workflows/{wid}"), "/workflows/{workflow_id}", "get")
    c(await get(f"{B}/workflows"), "/workflows", "get")
    c(await get(f"{B}/workflows/{wid}/status"), "/workflows/{workflow_id}/status", "get")
    file = c(
        await post(f"{B}/files", json={"workflow_id": wid, "name": "f", "path": "/x"}),
        "/files",
        "post",
    )
    ud = c(
        await post(f"{B}/user_data", json={"workflow_id": wid, "name": "u", "data": {"a": 1}}),
        "/user_data",
        "post",
    )
    rr = c(
        await post(
            f"{B}/resource_requirements",
            json={"workflow_id": wid, "name": "small", "memory": "1g", "runtime": "PT1H"},
        ),
        "/resource_requirements",
        "post",
    )
    node = c(
        await post(f"{B}/compute_nodes", json={"workflow_id": wid, "hostname": "h"}),
        "/compute_nodes",
        "post",
    )
    first = c(
        await post(
            f"{B}/jobs",
            json={
                "workflow_id": wid,
                "name": "first",
                "command": "true",
                "output_file_ids": [file["id"]],
                "output_user_data_ids": [ud["id"]],
                "resource_requirements_id": rr["id"],
            },
        ),
        "/jobs",
        "post",
    )
    bulk = c(
        await post(
            f"{B}/bulk_jobs",
            json={
                "jobs": [
                    {
                        "workflow_id": wid,
                        "name": f"next{i}",
                        "command": "true",
                        "input_file_ids": [file["id"]],
                        "invocation_script": "bash",
                    }
                    for i in range(3)
                ]
            },
        ),
        "/bulk_jobs",
        "post",
    )
    c(await get(f"{B}/jobs/{bulk['jobs'][0]['id']}"), "/jobs/{job_id}", "get")
    c(
        await post(f"{B}/workflows/{wid}/initialize_jobs"),
        "/workflows/{workflow_id}/initialize_jobs",
        "post",
    )
    c(
        await get(f"{B}/jobs", params={"workflow_id": wid, "include_relationships": True}),
        "/jobs",
        "get",
    )
    claimed = c(
        await post(f"{B}/workflows/{wid}/claim_next_jobs", params={"limit": 5}),
        "/workflows/{workflow_id}/claim_next_jobs",
        "post",
    )
    assert [j["id"] for j in claimed["jobs"]] == [first["id"]]
    assert claimed["jobs"][0]["output_file_ids"] == [file["id"]]
    c(
        await put(f"{B}/jobs/{first['id']}/start_job/0/{node['id']}"),
        "/jobs/{job_id}/start_job/{run_id}/{compute_node_id}",
        "put",
    )
    c(
        await post(
            f"{B}/jobs/{first['id']}/complete_job/completed/0",
            json={"return_code": 0, "compute_node_id": node["id"], "stdout": "out"},
        ),
        "/jobs/{job_id}/complete_job/{status}/{run_id}",
        "post",
    )
    by_resources = c(
        await post(f"{B}/workflows/{wid}/claim_jobs_based_on_resources/2", json=OFFER),
        "/workflows/{workflow_id}/claim_jobs_based_on_resources/{limit}",
        "post",
    )
    assert len(by_resources["jobs"]) == 2
    batch = c(
        await post(
            f"{B}/workflows/{wid}/batch_complete_jobs",
            json={
                "completions": [
                    {
                        "job_id": j["id"],
                        "status": "failed",
                        "run_id": 0,
                        "result": {"return_code": 1},
                    }
                    for j in by_resources["jobs"]
                ]
                + [{"job_id": 999, "status": "completed", "run_id": 0, "result": {}}]
            },
        ),
        "/workflows/{workflow_id}/batch_complete_jobs",
        "post",
    )
    assert batch["errors"][0]["job_id"] == 999
    results = c(await get(f"{B}/results", params={"workflow_id": wid}), "/results", "get")
    assert {r["status"] for r in results["items"]} == {"completed", "failed"}
    c(await get(f"{B}/results/{results['items'][0]['id']}"), "/results/{item_id}", "get")
    c(await get(f"{B}/events", params={"workflow_id": wid}), "/events", "get")
    for resource in ("files", "user_data", "resource_requirements", "compute_nodes"):
        c(await get(f"{B}/{resource}", params={"workflow_id": wid}), f"/{resource}", "get")
    retried = c(
        await post(f"{B}/jobs/{by_resources['jobs'][0]['id']}/retry/0", params={"max_retries": 3}),
        "/jobs/{job_id}/retry/{run_id}",
        "post",
    )
    assert retried["status"] == "ready"
    c(
        await put(f"{B}/jobs/{retried['id']}/manage_status_change/blocked/0"),
        "/jobs/{job_id}/manage_status_change/{status}/{run_id}",
        "put",
    )
    c(
        await post(f"{B}/workflows/{wid}/reset_job_status", params={"failed_only": True}),
        "/workflows/{workflow_id}/reset_job_status",
        "post",
    )
    c(
        await post(f"{B}/workflows/{wid}/process_changed_job_inputs", params={"dry_run": True}),
        "/workflows/{workflow_id}/process_changed_job_inputs",
        "post",
    )
    c(await get(f"{B}/workflows/{wid}/is_complete"), "/workflows/{workflow_id}/is_complete", "get")
    c(await get(f"{B}/workflows/{wid}/job_ids"), "/workflows/{workflow_id}/job_ids", "get")
    c(await put(f"{B}/workflows/{wid}/cancel"), "/workflows/{workflow_id}/cancel", "put")
    canceled = c(
        await post(f"{B}/workflows/{wid}/claim_jobs_based_on_resources/2", json=OFFER),
        "/workflows/{workflow_id}/claim_jobs_based_on_resources/{limit}",
        "post",
    )
    assert canceled["reason"] == "Workflow is canceled"
    c(await post(f"{B}/workflows/{wid}/run_on_ray"), "/workflows/{workflow_id}/run_on_ray", "post")
    c(await get(f"{B}/workflows/{wid}/run_on_ray"), "/workflows/{workflow_id}/run_on_ray", "get")
    c(
        await client.delete(f"{B}/workflows/{wid}/run_on_ray"),
        "/workflows/{workflow_id}/run_on_ray",
        "delete",
    )
    c(await get(f"{B}/ping"), "/ping", "get")
    c(await get(f"{B}/version"), "/version", "get")
    c(await client.delete(f"{B}/jobs", params={"workflow_id": wid}), "/jobs", "delete")
    c(await client.delete(f"{B}/files", params={"workflow_id": wid}), "/files", "delete")
    c(await get(f"{B}/jobs/{first['id']}"), "/jobs/{job_id}", "get", 404)
    c(
        await post(f"{B}/workflows/{wid}/claim_next_jobs?limit=-1"),
        "/workflows/{workflow_id}/claim_next_jobs",
        "post",
        422,
    )
    c(await post(f"{B}/jobs", json={"workflow_id": wid}), "/jobs", "post", 422)
    assert len(contract.checked) >= 35


async def test_api_021_responses_validate_against_the_published_schemas(
    client: httpx.AsyncClient, contract: Contract
) -> None:
    """The routes and shapes torc-client 0.35.0 (API 0.21) uses."""
    c, post, get = contract.check, client.post, client.get
    current = {"User-Agent": "OpenAPI-Generator/0.21.0/python"}
    wf = c(
        await post(
            f"{B}/workflows",
            json={"name": "w", "user": "u", "metadata": {"k": 1}, "slurm_defaults": {"a": "b"}},
            headers=current,
        ),
        "/workflows",
        "post",
    )
    assert wf["metadata"] == {"k": 1}
    wid = wf["id"]
    files = c(
        await post(
            f"{B}/bulk_files",
            json={
                "files": [{"workflow_id": wid, "name": f"f{i}", "path": f"/f{i}"} for i in (0, 1)]
            },
        ),
        "/bulk_files",
        "post",
    )["files"]
    uds = c(
        await post(
            f"{B}/bulk_user_data",
            json={
                "user_data": [{"workflow_id": wid, "name": "in"}, {"workflow_id": wid, "name": "o"}]
            },
        ),
        "/bulk_user_data",
        "post",
    )["user_data"]
    node = c(
        await post(f"{B}/compute_nodes", json={"workflow_id": wid, "hostname": "h"}),
        "/compute_nodes",
        "post",
    )
    a = c(
        await post(
            f"{B}/jobs",
            json={
                "workflow_id": wid,
                "name": "a",
                "command": "true",
                "priority": 3,
                "env": {"X": "1"},
                "input_file_ids": [files[0]["id"]],
                "output_file_ids": [files[1]["id"]],
                "input_user_data_ids": [uds[0]["id"]],
                "output_user_data_ids": [uds[1]["id"]],
            },
        ),
        "/jobs",
        "post",
    )
    await post(
        f"{B}/jobs",
        json={"workflow_id": wid, "name": "b", "command": "x", "input_file_ids": [files[1]["id"]]},
    )
    await post(f"{B}/workflows/{wid}/initialize_jobs")
    for path in ("job_dependencies", "job_file_relationships", "job_user_data_relationships"):
        page = c(
            await get(f"{B}/workflows/{wid}/{path}"), f"/workflows/{{workflow_id}}/{path}", "get"
        )
        assert page["total_count"] >= 1
    for path in ("missing_user_data", "required_existing_files", "ready_job_requirements"):
        c(await get(f"{B}/workflows/{wid}/{path}"), f"/workflows/{{workflow_id}}/{path}", "get")
    await post(f"{B}/workflows/{wid}/claim_next_jobs")
    started = c(
        await client.put(f"{B}/jobs/{a['id']}/start_job/0/{node['id']}"),
        "/jobs/{job_id}/start_job/{run_id}/{compute_node_id}",
        "put",
    )
    assert started["compute_node_id"] == node["id"]
    assert started["start_time"]
    running = c(
        await get(f"{B}/workflows/{wid}/running_jobs"),
        "/workflows/{workflow_id}/running_jobs",
        "get",
    )
    assert [r["job_name"] for r in running["items"]] == ["a"]
    status = c(
        await get(f"{B}/workflows/{wid}/status", headers=current),
        "/workflows/{workflow_id}/status",
        "get",
    )
    assert status["jobs_by_status"]["running"] == 1
    c(
        await post(
            f"{B}/jobs/{a['id']}/complete_job/completed/0",
            json={"return_code": 0, "compute_node_id": node["id"]},
        ),
        "/jobs/{job_id}/complete_job/{status}/{run_id}",
        "post",
    )
    results = c(await get(f"{B}/results", params={"workflow_id": wid}), "/results", "get")
    assert results["items"][0]["job_name"] == "a"
    c(await get(f"{B}/version", headers=current), "/version", "get")
    c(
        await post(f"{B}/workflows/{wid}/archive", json={"is_archived": True}),
        "/workflows/{workflow_id}/archive",
        "post",
    )
    c(
        await post(f"{B}/workflows/{wid}/archive", json={"is_archived": False}),
        "/workflows/{workflow_id}/archive",
        "post",
    )
    c(
        await post(f"{B}/workflows/{wid}/reset_status", params={"force": True}, headers=current),
        "/workflows/{workflow_id}/reset_status",
        "post",
    )
    deleted = c(await client.delete(f"{B}/files", params={"workflow_id": wid}), "/files", "delete")
    assert deleted["count"] == deleted["deleted_count"] == 2


async def test_handler_action_spawn_and_task_responses_validate(
    client: httpx.AsyncClient, contract: Contract
) -> None:
    """Failure handlers, workflow actions, spawn_jobs and async initialize."""
    c, post, get = contract.check, client.post, client.get
    wid = (await post(f"{B}/workflows", json={"name": "w", "user": "u"})).json()["id"]
    handler = c(
        await post(
            f"{B}/failure_handlers",
            json={"workflow_id": wid, "name": "h", "rules": '[{"exit_codes": [1]}]'},
        ),
        "/failure_handlers",
        "post",
    )
    c(await get(f"{B}/failure_handlers/{handler['id']}"), "/failure_handlers/{item_id}", "get")
    c(
        await get(f"{B}/workflows/{wid}/failure_handlers"),
        "/workflows/{workflow_id}/failure_handlers",
        "get",
    )
    job = (
        await post(
            f"{B}/jobs",
            json={
                "workflow_id": wid,
                "name": "j",
                "command": "x",
                "failure_handler_id": handler["id"],
            },
        )
    ).json()
    action = c(
        await post(
            f"{B}/workflows/{wid}/actions",
            json={
                "trigger_type": "on_workflow_start",
                "action_type": "run_commands",
                "action_config": {"commands": ["true"]},
            },
        ),
        "/workflows/{workflow_id}/actions",
        "post",
    )
    task = c(
        await post(f"{B}/workflows/{wid}/initialize_jobs", params={"async": True}),
        "/workflows/{workflow_id}/initialize_jobs",
        "post",
        202,
    )
    c(await get(f"{B}/tasks/{task['id']}"), "/tasks/{task_id}", "get")
    c(
        await get(f"{B}/workflows/{wid}/active_task"),
        "/workflows/{workflow_id}/active_task",
        "get",
    )
    c(await get(f"{B}/workflows/{wid}/actions"), "/workflows/{workflow_id}/actions", "get")
    pending = c(
        await get(f"{B}/workflows/{wid}/actions/pending"),
        "/workflows/{workflow_id}/actions/pending",
        "get",
    )
    assert [p["id"] for p in pending] == [action["id"]]
    c(
        await post(f"{B}/workflows/{wid}/actions/{action['id']}/claim", json={}),
        "/workflows/{workflow_id}/actions/{action_id}/claim",
        "post",
    )
    spawned = c(
        await post(
            f"{B}/jobs/{job['id']}/spawn_jobs",
            json={"jobs": [{"name": "child", "command": "y", "depends_on": ["j"]}]},
        ),
        "/jobs/{job_id}/spawn_jobs",
        "post",
    )
    assert spawned["iteration"] == 1
    c(
        await client.delete(f"{B}/failure_handlers/{handler['id']}"),
        "/failure_handlers/{item_id}",
        "delete",
    )
