"""Dynamic jobs: ``spawn_jobs`` in one transaction, blocked on the caller, idempotent, capped.

Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx

B = "/torc-service/v1"


async def _post(client: httpx.AsyncClient, path: str, body: object = None, **params: object):
    resp = await client.post(B + path, json=body if body is not None else {}, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _jobs(client: httpx.AsyncClient, wf: int) -> dict[str, dict]:
    page = await client.get(f"{B}/jobs", params={"workflow_id": wf, "include_relationships": True})
    return {j["name"]: j for j in page.json()["items"]}


async def _setup(client: httpx.AsyncClient, **workflow: object) -> tuple[int, int, int]:
    wf = (await _post(client, "/workflows", {"name": "dyn", "user": "u", **workflow}))["id"]
    node = (await _post(client, "/compute_nodes", {"workflow_id": wf, "hostname": "h"}))["id"]
    orch = (await _post(client, "/jobs", {"workflow_id": wf, "name": "orch", "command": "x"}))["id"]
    await _post(client, "/resource_requirements", {"workflow_id": wf, "name": "big", "num_cpus": 4})
    await _post(client, f"/workflows/{wf}/initialize_jobs")
    await _post(client, f"/workflows/{wf}/claim_next_jobs")
    await client.put(f"{B}/jobs/{orch}/start_job/0/{node}")
    return wf, node, orch


SPAWN = {
    "jobs": [
        {"name": "w1", "command": "work 1", "resource_requirements": "big", "priority": 2},
        {"name": "w2", "command": "work 2"},
        {"name": "merge", "command": "merge", "depends_on": ["w1", "w2"]},
    ],
    "state": {"round": 1},
}


async def test_spawned_jobs_wait_for_the_caller_then_run(client: httpx.AsyncClient) -> None:
    wf, node, orch = await _setup(client)
    answer = await _post(client, f"/jobs/{orch}/spawn_jobs", SPAWN)
    assert answer["iteration"] == 1
    jobs = await _jobs(client, wf)
    assert [jobs[n]["id"] for n in ("w1", "w2", "merge")] == answer["spawned_job_ids"]
    for name in ("w1", "w2", "merge"):
        assert jobs[name]["status"] == "blocked"
        assert jobs[name]["origin"] == "spawn"
        assert jobs[name]["env"] == {"TORC_ORCHESTRATOR_LINEAGE_ID": "orch"}
    assert jobs["w1"]["depends_on_job_ids"] == [orch]
    assert jobs["merge"]["depends_on_job_ids"] == sorted([orch, jobs["w1"]["id"], jobs["w2"]["id"]])
    assert jobs["w1"]["priority"] == 2
    rrs = (await client.get(f"{B}/resource_requirements", params={"workflow_id": wf})).json()
    big = next(r["id"] for r in rrs["items"] if r["name"] == "big")
    assert jobs["w1"]["resource_requirements_id"] == big
    lineage = (
        await client.get(
            f"{B}/user_data", params={"workflow_id": wf, "name": "__torc_lineage__orch__g000001"}
        )
    ).json()["items"]
    assert lineage[0]["data"] == {"generation": 1, "spawn_count": 3, "state": {"round": 1}}
    assert lineage[0]["is_ephemeral"] is True
    await _post(
        client,
        f"/jobs/{orch}/complete_job/completed/0",
        {"return_code": 0, "compute_node_id": node},
    )
    jobs = await _jobs(client, wf)
    assert (jobs["w1"]["status"], jobs["w2"]["status"], jobs["merge"]["status"]) == (
        "ready",
        "ready",
        "blocked",
    )
    claimed = await _post(client, f"/workflows/{wf}/claim_next_jobs")
    assert [j["name"] for j in claimed["jobs"]] == ["w1", "w2"]


async def test_spawn_replay_is_idempotent_and_partial_overlap_is_refused(
    client: httpx.AsyncClient,
) -> None:
    wf, _, orch = await _setup(client)
    first = await _post(client, f"/jobs/{orch}/spawn_jobs", SPAWN)
    replay = await _post(client, f"/jobs/{orch}/spawn_jobs", SPAWN)
    assert replay == first
    mixed = await client.post(
        f"{B}/jobs/{orch}/spawn_jobs",
        json={"jobs": [{"name": "w1", "command": "x"}, {"name": "new", "command": "x"}]},
    )
    assert mixed.status_code == 422
    assert "already exist" in mixed.json()["error"]["message"]
    assert len(await _jobs(client, wf)) == 4


async def test_bad_spawns_return_422_and_write_nothing(client: httpx.AsyncClient) -> None:
    wf, _, orch = await _setup(client, dynamic_jobs={"max_iterations": 1})
    cases = [
        ({"jobs": [{"name": "a", "command": "x", "resource_requirements": "nope"}]}, "'nope'"),
        ({"jobs": [{"name": "a", "command": "x", "depends_on": ["ghost"]}]}, "'ghost'"),
        (
            {"jobs": [{"name": "a", "command": "x", "depends_on": ["b"]},
                      {"name": "b", "command": "x", "depends_on": ["a"]}]},
            "Dependency cycle among spawned jobs",
        ),
        ({"jobs": [{"name": "a", "command": "x", "priority": -1}]}, "priority must be >= 0"),
        ({"jobs": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]}, "twice"),
    ]  # fmt: skip
    for body, text in cases:
        resp = await client.post(f"{B}/jobs/{orch}/spawn_jobs", json=body)
        assert resp.status_code == 422, body
        assert text in resp.json()["error"]["message"]
    assert list(await _jobs(client, wf)) == ["orch"]
    assert (await client.post(f"{B}/jobs/987654/spawn_jobs", json={"jobs": []})).status_code == 404
    await _post(client, f"/jobs/{orch}/spawn_jobs", {"jobs": [{"name": "a", "command": "x"}]})
    capped = await client.post(
        f"{B}/jobs/{orch}/spawn_jobs", json={"jobs": [{"name": "b", "command": "x"}]}
    )
    assert capped.status_code == 422
    assert "max_iterations 1" in capped.json()["error"]["message"]
    assert sorted(await _jobs(client, wf)) == ["a", "orch"]
    final = await _post(client, f"/jobs/{orch}/spawn_jobs", {"jobs": [], "state": {"done": True}})
    assert final == {"spawned_job_ids": [], "iteration": 1}
    names = [
        u["name"]
        for u in (await client.get(f"{B}/user_data", params={"workflow_id": wf})).json()["items"]
    ]
    assert names == ["__torc_lineage__orch__g000001", "__torc_lineage__orch__final"]
    wf_body = (await client.get(f"{B}/workflows/{wf}")).json()
    assert wf_body["dynamic_jobs"] == {"max_iterations": 1}
