"""The seed document's curl examples, sent as written (httpx), read as the seed reads them."""

from __future__ import annotations

import httpx

B = "/torc-service/v1"


async def test_seed_examples_work_as_written(client: httpx.AsyncClient) -> None:
    wf = await client.post(
        f"{B}/workflows",
        json={"name": "test_workflow", "user": "alice", "description": "Test workflow"},
    )
    assert wf.status_code == 200
    body = wf.json()
    assert body["id"] == 1
    assert body["name"] == "test_workflow"
    assert body["user"] == "alice"
    assert isinstance(body["timestamp"], str)
    listed = (await client.get(f"{B}/workflows?offset=0&limit=10")).json()
    assert (
        [w["name"] for w in listed["workflows"]]
        == ["test_workflow"]
        == [w["name"] for w in listed["items"]]
    )
    assert (await client.get(f"{B}/workflows/1")).json()["description"] == "Test workflow"

    rr = await client.post(
        f"{B}/resource_requirements",
        json={
            "workflow_id": 1,
            "name": "gpu_large",
            "num_cpus": 16,
            "num_gpus": 4,
            "num_nodes": 1,
            "memory": "128g",
            "runtime": "PT8H",
        },
    )
    assert rr.status_code == 200
    assert rr.json()["memory"] == "128g"
    small = await client.post(
        f"{B}/resource_requirements",
        json={"workflow_id": 1, "name": "small", "memory": "1m", "runtime": "PT30M"},
    )
    assert small.json()["id"] == 3  # 1 is the workflow's "default"
    job = await client.post(
        f"{B}/jobs",
        json={
            "workflow_id": 1,
            "name": "job1",
            "command": "echo hello",
            "resource_requirements_id": 1,
            "input_file_ids": [],
            "output_file_ids": [],
            "depends_on_job_ids": [],
        },
    )
    assert job.status_code == 200
    assert job.json()["status"] == "uninitialized"
    f = await client.post(
        f"{B}/files", json={"workflow_id": 1, "name": "input_data", "path": "/data/input.csv"}
    )
    assert f.status_code == 200
    assert [x["name"] for x in (await client.get(f"{B}/files?workflow_id=1")).json()["files"]] == [
        "input_data"
    ]
    ud = await client.post(
        f"{B}/user_data",
        json={
            "workflow_id": 1,
            "name": "config",
            "data": {"learning_rate": 0.001, "batch_size": 32},
        },
    )
    assert ud.status_code == 200
    put = await client.put(
        f"{B}/user_data/{ud.json()['id']}",
        json={
            "workflow_id": 1,
            "name": "config",
            "data": {"learning_rate": 0.01, "batch_size": 64},
        },
    )
    assert put.json()["data"] == {"learning_rate": 0.01, "batch_size": 64}

    init = await client.post(
        f"{B}/workflows/1/initialize_jobs",
        json={"reinitialize": False, "ignore_missing_data": False},
    )
    assert init.status_code == 200
    ready = (await client.get(f"{B}/jobs", params={"workflow_id": 1, "status": "ready"})).json()
    assert [{k: j[k] for k in ("name", "status", "id")} for j in ready["jobs"]] == [
        {"name": "job1", "status": "ready", "id": 1}
    ]
    claimed = await client.post(f"{B}/workflows/1/claim_next_jobs?num_jobs=5", json={})
    assert [j["name"] for j in claimed.json()["jobs"]] == ["job1"]
    running = await client.post(
        f"{B}/jobs/1/manage_status_change", json={"target_status": "running"}
    )
    assert running.status_code == 200
    assert running.json()["status"] == "running"

    node = await client.post(
        f"{B}/compute_nodes",
        json={
            "workflow_id": 1,
            "hostname": "compute-01",
            "num_cpus": 32,
            "memory": "256g",
            "num_gpus": 8,
            "is_active": True,
        },
    )
    assert node.status_code == 200
    assert node.json()["memory_gb"] == 256.0
    active = (await client.get(f"{B}/compute_nodes?workflow_id=1&is_active=true")).json()
    assert [
        {k: n[k] for k in ("hostname", "num_cpus", "num_gpus")} for n in active["compute_nodes"]
    ] == [{"hostname": "compute-01", "num_cpus": 32, "num_gpus": 8}]
    result = await client.post(
        f"{B}/results",
        json={
            "workflow_id": 1,
            "job_id": 1,
            "exit_code": 0,
            "stdout": "Job completed successfully",
            "stderr": "",
        },
    )
    assert result.status_code == 200
    assert result.json()["return_code"] == 0
    assert result.json()["stdout"] == "Job completed successfully"
    results = (await client.get(f"{B}/results?workflow_id=1")).json()["results"]
    assert [r["stdout"] for r in results] == ["Job completed successfully"]
    events = (await client.get(f"{B}/events?workflow_id=1&limit=20")).json()
    assert events["events"]
    assert all({"timestamp", "data"} <= set(e) for e in events["events"])
    changed = await client.post(f"{B}/workflows/1/process_changed_job_inputs?dry_run=true", json={})
    assert changed.json() == {"reinitialized_jobs": []}


async def test_bad_input_answers_4xx_with_message(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{B}/workflows/5")).json() == {
        "error": {"message": "Workflow not found with ID: 5", "code": "workflow_not_found"}
    }
    await client.post(f"{B}/workflows", json={"name": "w", "user": "u"})
    for memory in ("1.5g", "12q", "-3m"):
        r = await client.post(
            f"{B}/resource_requirements", json={"workflow_id": 1, "name": "x", "memory": memory}
        )
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "memory"
    r = await client.post(
        f"{B}/resource_requirements", json={"workflow_id": 1, "name": "x", "runtime": "PT"}
    )
    assert r.status_code == 422
    assert "ISO 8601" in r.json()["error"]["message"]
    r = await client.post(
        f"{B}/jobs",
        json={"workflow_id": 1, "name": "j", "command": "x", "depends_on_job_ids": [77]},
    )
    assert r.status_code == 422
    assert "77" in r.json()["error"]["message"]
    r = await client.post(f"{B}/jobs", json={"workflow_id": 1, "name": "j"})
    assert r.status_code == 422
    assert "command" in r.json()["error"]["message"]
    await client.post(f"{B}/jobs", json={"workflow_id": 1, "name": "j", "command": "x"})
    r = await client.post(f"{B}/jobs/1/manage_status_change", json={"target_status": "finished"})
    assert r.status_code == 422
    assert "status" in r.json()["error"]["message"]
    r = await client.post(f"{B}/jobs/1/complete_job/completed/0", json={"return_code": 0})
    assert r.status_code == 200
    r = await client.post(f"{B}/jobs/1/complete_job/completed/0", json={"return_code": 0})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Job 1 is already complete with status completed"
    r = await client.post(f"{B}/jobs/1/complete_job/running/0", json={"return_code": 0})
    assert r.status_code == 422
    r = await client.put(f"{B}/jobs/1/manage_status_change/ready/9")
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("Run ID mismatch")
    r = await client.get(f"{B}/jobs?workflow_id=1&limit=10001")
    assert r.status_code == 422
    r = await client.get(f"{B}/jobs?workflow_id=1&sort_by=nope")
    assert r.status_code == 422
    assert (await client.post(f"{B}/workflows/1/claim_next_jobs?limit=-1")).status_code == 422


async def test_batch_complete_jobs_completes_valid_entries_and_lists_errors(
    client: httpx.AsyncClient,
) -> None:
    await client.post(f"{B}/workflows", json={"name": "w", "user": "u"})
    a = (
        await client.post(f"{B}/jobs", json={"workflow_id": 1, "name": "a", "command": "x"})
    ).json()["id"]
    b = (
        await client.post(f"{B}/jobs", json={"workflow_id": 1, "name": "b", "command": "x"})
    ).json()["id"]
    c = (
        await client.post(
            f"{B}/jobs",
            json={"workflow_id": 1, "name": "c", "command": "x", "depends_on_job_ids": [a, b]},
        )
    ).json()["id"]
    await client.post(f"{B}/workflows/1/initialize_jobs")
    assert len((await client.post(f"{B}/workflows/1/claim_next_jobs")).json()["jobs"]) == 2
    body = {
        "completions": [
            {
                "job_id": a,
                "status": "completed",
                "run_id": 0,
                "result": {"return_code": 0, "stdout": " kept \n"},
            },
            {"job_id": b, "status": "completed", "run_id": 0, "result": {"return_code": 0}},
            {"job_id": b, "status": "completed", "run_id": 0, "result": {"return_code": 0}},
            {"job_id": 999, "status": "completed", "run_id": 0, "result": {"return_code": 0}},
            {"job_id": c, "status": "running", "run_id": 0, "result": {"return_code": 0}},
        ]
    }
    resp = (await client.post(f"{B}/workflows/1/batch_complete_jobs", json=body)).json()
    assert resp["completed"] == [a, b]
    assert [e["job_id"] for e in resp["errors"]] == [b, 999, c]
    assert "already complete" in resp["errors"][0]["message"]
    assert (await client.get(f"{B}/jobs/{c}")).json()["status"] == "ready"
    results = (await client.get(f"{B}/results?workflow_id=1&job_id={a}")).json()["items"]
    assert results[0]["stdout"] == " kept \n"
