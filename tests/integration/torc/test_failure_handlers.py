"""Failure handlers (CRUD, rule checks), retries, one result per attempt, pending_failed.

Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import httpx

B = "/torc-service/v1"
CURRENT = {"User-Agent": "OpenAPI-Generator/0.21.0/python"}
OLD = {"User-Agent": "OpenAPI-Generator/0.7.0/python"}
RULES = json.dumps([{"exit_codes": [3], "max_retries": 3, "recovery_script": "echo fix"}])


async def _post(client: httpx.AsyncClient, path: str, body: object = None, **params: object):
    resp = await client.post(B + path, json=body if body is not None else {}, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _setup(client: httpx.AsyncClient) -> tuple[int, int, int]:
    wf = (await _post(client, "/workflows", {"name": "fh", "user": "u"}))["id"]
    node = await _post(client, "/compute_nodes", {"workflow_id": wf, "hostname": "h"})
    handler = await _post(
        client, "/failure_handlers", {"workflow_id": wf, "name": "retry3", "rules": RULES}
    )
    return wf, node["id"], handler["id"]


async def test_failure_handler_crud_round_trips_rules_as_a_string(
    client: httpx.AsyncClient,
) -> None:
    wf, _, handler = await _setup(client)
    got = (await client.get(f"{B}/failure_handlers/{handler}")).json()
    assert got == {"id": handler, "workflow_id": wf, "name": "retry3", "rules": RULES}
    as_array = await _post(
        client,
        "/failure_handlers",
        {"workflow_id": wf, "name": "all", "rules": [{"match_all_exit_codes": True}]},
    )
    assert json.loads(as_array["rules"]) == [{"match_all_exit_codes": True}]
    page = (await client.get(f"{B}/workflows/{wf}/failure_handlers")).json()
    assert [h["name"] for h in page["items"]] == ["retry3", "all"]
    assert page["total_count"] == 2
    job = await _post(
        client,
        "/jobs",
        {"workflow_id": wf, "name": "j", "command": "x", "failure_handler_id": as_array["id"]},
    )
    deleted = await client.delete(f"{B}/failure_handlers/{as_array['id']}")
    assert deleted.json()["name"] == "all"
    assert "failure_handler_id" not in (await client.get(f"{B}/jobs/{job['id']}")).json()
    assert (await client.get(f"{B}/failure_handlers/{as_array['id']}")).status_code == 404


async def test_malformed_rules_return_422_naming_the_problem_and_write_nothing(
    client: httpx.AsyncClient,
) -> None:
    wf, _, _ = await _setup(client)
    cases = {
        "not json": "not JSON",
        '{"exit_codes": [1]}': "expected a JSON array",
        '[{"exit_codes": ["x"]}]': "exit_codes must be a list of integers",
        '[{"exit_codes": [1], "max_retries": -1}]': "max_retries must be an integer >= 0",
        '[{"exit_codes": [1], "bogus": 1}]': "unknown keys ['bogus']",
        "[{}]": "matches nothing",
    }
    for rules, text in cases.items():
        resp = await client.post(
            f"{B}/failure_handlers", json={"workflow_id": wf, "name": "bad", "rules": rules}
        )
        assert resp.status_code == 422, rules
        assert text in resp.json()["error"]["message"], resp.json()
    page = (await client.get(f"{B}/workflows/{wf}/failure_handlers")).json()
    assert page["total_count"] == 1


async def test_job_with_unknown_failure_handler_returns_422_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    wf, _, handler = await _setup(client)
    other = (await _post(client, "/workflows", {"name": "other", "user": "u"}))["id"]
    foreign = await _post(
        client, "/failure_handlers", {"workflow_id": other, "name": "x", "rules": RULES}
    )
    for bad in (987654, foreign["id"]):
        resp = await client.post(
            f"{B}/bulk_jobs",
            json={
                "jobs": [
                    {
                        "workflow_id": wf,
                        "name": "ok",
                        "command": "x",
                        "failure_handler_id": handler,
                    },
                    {"workflow_id": wf, "name": "bad", "command": "x", "failure_handler_id": bad},
                ]
            },
        )
        assert resp.status_code == 422
        assert f"failure_handler_id {bad}" in resp.json()["error"]["message"]
    jobs = (await client.get(f"{B}/jobs", params={"workflow_id": wf})).json()
    assert jobs["total_count"] == 0


async def test_retry_bumps_attempt_and_results_are_unique_per_attempt(
    client: httpx.AsyncClient,
) -> None:
    wf, node, handler = await _setup(client)
    job = await _post(
        client,
        "/jobs",
        {"workflow_id": wf, "name": "flaky", "command": "exit 3", "failure_handler_id": handler},
    )
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    await _post(client, f"/workflows/{wf}/claim_next_jobs")
    await client.put(f"{B}/jobs/{job['id']}/start_job/0/{node}")
    result = {"workflow_id": wf, "job_id": job["id"], "compute_node_id": node, "return_code": 3}
    first = await _post(client, "/results", {**result, "status": "failed"})
    assert first["attempt_id"] == 1
    dup = await client.post(f"{B}/results", json={**result, "status": "failed"})
    assert dup.status_code == 409
    assert "already exists" in dup.json()["error"]["message"]
    retried = await _post(client, f"/jobs/{job['id']}/retry/0", max_retries=3)
    assert (retried["status"], retried["attempt_id"], retried["origin"]) == ("ready", 2, "retry")
    assert "compute_node_id" not in retried
    assert "start_time" not in retried
    origin = await client.get(f"{B}/jobs", params={"workflow_id": wf, "origin_is_set": True})
    assert origin.json()["total_count"] == 1
    await _post(client, f"/workflows/{wf}/claim_next_jobs")
    await client.put(f"{B}/jobs/{job['id']}/start_job/0/{node}")
    done = await _post(
        client, f"/jobs/{job['id']}/complete_job/failed/0", {**result, "status": "failed"}
    )
    assert done["status"] == "failed"
    rows = (await client.get(f"{B}/results", params={"workflow_id": wf, "all_runs": True})).json()[
        "items"
    ]
    assert sorted((r["attempt_id"], r["return_code"]) for r in rows) == [(1, 3), (2, 3)]
    exhausted = await client.post(f"{B}/jobs/{job['id']}/retry/0", params={"max_retries": 2})
    assert exhausted.status_code == 422
    again = await _post(client, f"/jobs/{job['id']}/retry/0", max_retries=3)
    assert again["attempt_id"] == 3
    refused = await client.post(f"{B}/jobs/{job['id']}/retry/0", params={"max_retries": 3})
    assert refused.status_code == 422
    events = (await client.get(f"{B}/events", params={"workflow_id": wf})).json()["items"]
    assert sum(e["data"].get("event_type") == "job_retried" for e in events) == 2


async def test_pending_failed_is_shown_as_failed_to_v012_clients(
    client: httpx.AsyncClient,
) -> None:
    wf, node, _ = await _setup(client)
    await client.put(f"{B}/workflows/{wf}", json={"use_pending_failed": True})
    job = await _post(client, "/jobs", {"workflow_id": wf, "name": "j", "command": "false"})
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    await _post(client, f"/workflows/{wf}/claim_next_jobs")
    await client.put(f"{B}/jobs/{job['id']}/start_job/0/{node}")
    await _post(
        client,
        f"/jobs/{job['id']}/complete_job/pending_failed/0",
        {"return_code": 1, "compute_node_id": node},
    )
    current = (await client.get(f"{B}/jobs/{job['id']}", headers=CURRENT)).json()
    assert current["status"] == "pending_failed"
    old = (await client.get(f"{B}/jobs/{job['id']}", headers=OLD)).json()
    assert old["status"] == "failed"
    listed = (await client.get(f"{B}/jobs", params={"workflow_id": wf}, headers=OLD)).json()
    assert listed["items"][0]["status"] == "failed"
    assert listed["jobs"][0]["status"] == "failed"
    results = (await client.get(f"{B}/results", params={"workflow_id": wf}, headers=OLD)).json()
    assert results["items"][0]["status"] == "failed"
    # pending_failed is terminal for runners but does not complete the workflow.
    complete = (await client.get(f"{B}/workflows/{wf}/is_complete")).json()
    assert complete["is_complete"] is False
    status = (await client.get(f"{B}/workflows/{wf}/status", headers=OLD)).json()
    assert status["jobs_by_status"]["pending_failed"] == 1
