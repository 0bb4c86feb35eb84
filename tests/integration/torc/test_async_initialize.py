"""``initialize_jobs?async=true``: 202 with a task, ``/tasks/{id}``, ``active_task``, 409.

Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

import httpx

from control_plane.services.torc import TaskService

B = "/torc-service/v1"


async def _workflow(client: httpx.AsyncClient) -> tuple[int, int]:
    wf = (await client.post(f"{B}/workflows", json={"name": "a", "user": "u"})).json()["id"]
    a = await client.post(f"{B}/jobs", json={"workflow_id": wf, "name": "a", "command": "x"})
    await client.post(
        f"{B}/jobs",
        json={
            "workflow_id": wf,
            "name": "b",
            "command": "x",
            "depends_on_job_ids": [a.json()["id"]],
        },
    )
    return wf, a.json()["id"]


async def _wait(client: httpx.AsyncClient, task_id: int) -> dict:
    for _ in range(100):
        task = (await client.get(f"{B}/tasks/{task_id}")).json()
        if task["status"] in ("succeeded", "failed"):
            return dict(task)
        await asyncio.sleep(0.05)
    raise AssertionError("task did not finish")


async def test_async_initialize_answers_202_with_a_task_that_succeeds(
    client: httpx.AsyncClient,
) -> None:
    wf, _ = await _workflow(client)
    resp = await client.post(f"{B}/workflows/{wf}/initialize_jobs", params={"async": True})
    assert resp.status_code == 202
    task = resp.json()
    assert (task["workflow_id"], task["operation"]) == (wf, "initialize_jobs")
    assert task["status"] in ("queued", "running", "succeeded")
    done = await _wait(client, task["id"])
    assert done["status"] == "succeeded"
    assert done["finished_at_ms"] >= done["started_at_ms"] >= done["created_at_ms"]
    jobs = (await client.get(f"{B}/jobs", params={"workflow_id": wf})).json()["items"]
    assert [j["status"] for j in jobs] == ["ready", "blocked"]
    assert (await client.get(f"{B}/workflows/{wf}/active_task")).json() == {"task": None}
    sync = await client.post(f"{B}/workflows/{wf}/initialize_jobs")
    assert sync.status_code == 200
    assert sync.json() == {"message": "Initialized job status"}
    assert (await client.get(f"{B}/tasks/987654")).status_code == 404


async def test_failed_async_initialize_records_the_error(client: httpx.AsyncClient) -> None:
    wf, a = await _workflow(client)
    b = (await client.get(f"{B}/jobs", params={"workflow_id": wf})).json()["items"][1]["id"]
    await client.put(f"{B}/jobs/{a}", json={"depends_on_job_ids": [b]})
    resp = await client.post(f"{B}/workflows/{wf}/initialize_jobs", params={"async": True})
    done = await _wait(client, resp.json()["id"])
    assert done["status"] == "failed"
    assert done["error"].startswith("Dependency cycle detected")


async def test_initialize_while_a_task_is_active_returns_409(client: httpx.AsyncClient) -> None:
    wf, _ = await _workflow(client)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        queued = TaskService(session).create_initialize(wf)
    active = (await client.get(f"{B}/workflows/{wf}/active_task")).json()
    assert active["task"]["id"] == queued["id"]
    for params in ({"async": True}, {}):
        resp = await client.post(f"{B}/workflows/{wf}/initialize_jobs", params=params)
        assert resp.status_code == 409
        error = resp.json()["error"]
        assert error["existing_task_id"] == queued["id"]
        assert error["existing_operation"] == "initialize_jobs"
    jobs = (await client.get(f"{B}/jobs", params={"workflow_id": wf})).json()["items"]
    assert {j["status"] for j in jobs} == {"uninitialized"}
    missing = await client.post(f"{B}/workflows/987654/initialize_jobs", params={"async": True})
    assert missing.status_code == 404
