"""Workflow actions: create (checks), list, pending, claim (404/409), counting, re-arming.

Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx

B = "/torc-service/v1"
RUN = {"commands": ["echo hi"]}


async def _post(client: httpx.AsyncClient, path: str, body: object = None, **params: object):
    resp = await client.post(B + path, json=body if body is not None else {}, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _workflow(client: httpx.AsyncClient) -> tuple[int, int, list[int]]:
    wf = (await _post(client, "/workflows", {"name": "act", "user": "u"}))["id"]
    node = (await _post(client, "/compute_nodes", {"workflow_id": wf, "hostname": "h"}))["id"]
    a = (await _post(client, "/jobs", {"workflow_id": wf, "name": "a", "command": "x"}))["id"]
    b = (
        await _post(
            client,
            "/jobs",
            {"workflow_id": wf, "name": "b", "command": "x", "depends_on_job_ids": [a]},
        )
    )["id"]
    return wf, node, [a, b]


async def _finish(client: httpx.AsyncClient, wf: int, node: int) -> None:
    for job in (await _post(client, f"/workflows/{wf}/claim_next_jobs"))["jobs"]:
        await client.put(f"{B}/jobs/{job['id']}/start_job/0/{node}")
        await _post(
            client,
            f"/jobs/{job['id']}/complete_job/completed/0",
            {"return_code": 0, "compute_node_id": node},
        )


async def test_bad_actions_return_422_naming_the_problem_and_write_nothing(
    client: httpx.AsyncClient,
) -> None:
    wf, _, jobs = await _workflow(client)
    cases = [
        ({"trigger_type": "on_lunch", "action_type": "run_commands"}, "trigger_type 'on_lunch'"),
        (
            {"trigger_type": "on_workflow_start", "action_type": "run_commands",
             "action_config": {"commands": []}},
            "Invalid action_config",
        ),
        (
            {"trigger_type": "on_workflow_start", "action_type": "run_commands",
             "action_config": {"commands": ["x"], "extra": 1}},
            "Invalid action_config",
        ),
        (
            {"trigger_type": "on_workflow_start", "action_type": "schedule_nodes",
             "action_config": {"num_allocations": "two"}},
            "num_allocations must be int",
        ),
        (
            {"trigger_type": "on_jobs_ready", "action_type": "run_commands",
             "action_config": RUN, "job_ids": [jobs[0], 987654]},
            "job_ids containing 987654",
        ),
    ]  # fmt: skip
    for body, text in cases:
        resp = await client.post(f"{B}/workflows/{wf}/actions", json=body)
        assert resp.status_code == 422, body
        assert text in resp.json()["error"]["message"]
    assert (await client.get(f"{B}/workflows/{wf}/actions")).json() == []
    missing = await client.post(
        f"{B}/workflows/987654/actions",
        json={"trigger_type": "on_workflow_start", "action_type": "x"},
    )
    assert missing.status_code == 404


async def test_triggers_count_and_claims_are_exclusive(client: httpx.AsyncClient) -> None:
    wf, node, (a, b) = await _workflow(client)
    start = await _post(
        client,
        f"/workflows/{wf}/actions",
        {"trigger_type": "on_workflow_start", "action_type": "run_commands", "action_config": RUN},
    )
    both_done = await _post(
        client,
        f"/workflows/{wf}/actions",
        {
            "trigger_type": "on_jobs_complete",
            "action_type": "run_commands",
            "action_config": RUN,
            "job_ids": [a, b],
        },
    )
    assert both_done["required_triggers"] == 2
    sched = await _post(
        client,
        f"/workflows/{wf}/actions",
        {
            "trigger_type": "on_workflow_complete",
            "action_type": "schedule_nodes",
            "action_config": {"scheduler_id": 1, "num_allocations": 2},
            "persistent": True,
        },
    )
    assert (await client.get(f"{B}/workflows/{wf}/actions/pending")).json() == []
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    pending = (await client.get(f"{B}/workflows/{wf}/actions/pending")).json()
    assert [p["id"] for p in pending] == [start["id"]]
    claim = f"/workflows/{wf}/actions/{start['id']}/claim"
    assert await _post(client, claim, {"compute_node_id": node}) == {
        "claimed": True,
        "success": True,
        "action_id": start["id"],
    }
    again = await client.post(B + claim, json={"compute_node_id": node})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"Action {start['id']} already claimed"
    not_pending = await client.post(f"{B}/workflows/{wf}/actions/{both_done['id']}/claim")
    assert not_pending.status_code == 409
    other = (await _post(client, "/workflows", {"name": "o", "user": "u"}))["id"]
    assert (
        await client.post(f"{B}/workflows/{other}/actions/{start['id']}/claim")
    ).status_code == 404
    await _finish(client, wf, node)  # a
    listed = {x["id"]: x for x in (await client.get(f"{B}/workflows/{wf}/actions")).json()}
    assert listed[both_done["id"]]["trigger_count"] == 1
    await _finish(client, wf, node)  # b
    pending = (
        await client.get(
            f"{B}/workflows/{wf}/actions/pending",
            params={"trigger_type": ["on_jobs_complete", "on_workflow_complete"]},
        )
    ).json()
    assert {p["id"] for p in pending} == {both_done["id"], sched["id"]}
    # A persistent action is claimable by every worker.
    for _ in range(2):
        await _post(
            client, f"/workflows/{wf}/actions/{sched['id']}/claim", {"compute_node_id": node}
        )
    await _post(client, f"/workflows/{wf}/actions/{both_done['id']}/claim")
    # Re-arming: a partial initialize keeps actions whose jobs are all finished and the
    # executed on_workflow_start; a full one re-arms everything.
    await client.put(f"{B}/jobs/{b}/manage_status_change/uninitialized/0")
    await _post(client, f"/workflows/{wf}/initialize_jobs", only_uninitialized=True)
    listed = {x["id"]: x for x in (await client.get(f"{B}/workflows/{wf}/actions")).json()}
    assert listed[start["id"]]["executed"] is True
    assert (listed[both_done["id"]]["executed"], listed[both_done["id"]]["trigger_count"]) == (
        False,
        1,
    )
    await _post(client, f"/workflows/{wf}/reset_job_status")
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    listed = {x["id"]: x for x in (await client.get(f"{B}/workflows/{wf}/actions")).json()}
    assert listed[start["id"]]["executed"] is False
    assert listed[start["id"]]["trigger_count"] == 1
    assert "executed_by" not in listed[start["id"]]
    assert listed[sched["id"]]["trigger_count"] == 0


async def test_recovery_actions_are_deleted_by_initialize(client: httpx.AsyncClient) -> None:
    wf, _, _ = await _workflow(client)
    await _post(
        client,
        f"/workflows/{wf}/actions",
        {
            "trigger_type": "on_workflow_start",
            "action_type": "schedule_nodes",
            "action_config": {},
            "is_recovery": True,
        },
    )
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    assert (await client.get(f"{B}/workflows/{wf}/actions")).json() == []


def test_concurrent_completions_count_every_gating_job(db_url: str) -> None:
    """Eight workers completing gating jobs at once: the job trigger sees all of them."""
    import threading

    from control_plane.db.session import make_engine, make_session_factory, upgrade_database
    from control_plane.services.torc import (
        ClaimService,
        ComputeNodeService,
        JobInitializer,
        JobService,
        JobTransitionService,
        WorkflowActionService,
        WorkflowService,
    )

    engine = make_engine(db_url, pool_size=10)
    upgrade_database(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        wf = WorkflowService(s).create({"name": "race", "user": "u"})["id"]
        node = ComputeNodeService(s).create({"workflow_id": wf, "hostname": "h"})["id"]
        jobs = JobService(s).create_many(
            [{"workflow_id": wf, "name": f"j{i}", "command": "x"} for i in range(16)]
        )
        action = WorkflowActionService(s).create(
            wf,
            {
                "trigger_type": "on_jobs_complete",
                "action_type": "run_commands",
                "action_config": RUN,
                "job_ids": [j["id"] for j in jobs],
            },
        )
        JobInitializer(s).initialize(wf)
        claimed = ClaimService(s).claim_next(wf, 16)["jobs"]
        for job in claimed:
            JobTransitionService(s).start(job["id"], 0, node)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            with factory() as s:
                for job in claimed[i::8]:
                    JobTransitionService(s).complete(
                        job["id"], "completed", 0, {"return_code": 0, "compute_node_id": node}
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with factory() as s:
        (row,) = WorkflowActionService(s).list(wf)
        pending = WorkflowActionService(s).pending(wf)
    engine.dispose()
    assert (row["id"], row["trigger_count"], row["required_triggers"]) == (action["id"], 16, 16)
    assert [p["id"] for p in pending] == [action["id"]]
