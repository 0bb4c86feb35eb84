"""Job priority (API 0.21): stored, validated, and the first claim key on both claim paths.

Run on SQLite and PostgreSQL, with 8 concurrent claimers over prioritized jobs.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx

from control_plane.db.session import make_engine, make_session_factory, upgrade_database
from control_plane.services.torc import ClaimService, JobInitializer, JobService, WorkflowService

B = "/torc-service/v1"
BIG = {"num_cpus": 64, "memory_gb": 64.0, "num_gpus": 0, "num_nodes": 1}


async def _workflow(client: httpx.AsyncClient) -> int:
    resp = await client.post(f"{B}/workflows", json={"name": "p", "user": "u"})
    return int(resp.json()["id"])


async def _job(client: httpx.AsyncClient, wf: int, name: str, **extra: object) -> dict:
    resp = await client.post(
        f"{B}/jobs", json={"workflow_id": wf, "name": name, "command": "true", **extra}
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_create_job_with_negative_priority_returns_422_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    wf = await _workflow(client)
    resp = await client.post(
        f"{B}/jobs", json={"workflow_id": wf, "name": "neg", "command": "x", "priority": -1}
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["message"] == "priority must be >= 0, got -1"
    bulk = await client.post(
        f"{B}/bulk_jobs",
        json={
            "jobs": [
                {"workflow_id": wf, "name": "ok", "command": "x", "priority": 2},
                {"workflow_id": wf, "name": "bad", "command": "x", "priority": -5},
            ]
        },
    )
    assert bulk.status_code == 422
    listed = await client.get(f"{B}/jobs", params={"workflow_id": wf})
    assert listed.json()["total_count"] == 0
    job = await _job(client, wf, "j", priority=4)
    assert job["priority"] == 4
    update = await client.put(f"{B}/jobs/{job['id']}", json={"priority": -2})
    assert update.status_code == 422
    assert "priority must be >= 0" in update.json()["error"]["message"]
    ok = await client.put(f"{B}/jobs/{job['id']}", json={"priority": 9})
    assert ok.json()["priority"] == 9
    assert (await client.get(f"{B}/jobs/{job['id']}")).json()["priority"] == 9


async def test_claim_next_jobs_orders_by_priority_then_id(client: httpx.AsyncClient) -> None:
    wf = await _workflow(client)
    ids = {}
    for name, prio in (("low", 0), ("high", 10), ("mid", 5), ("high2", 10), ("low2", 0)):
        ids[name] = (await _job(client, wf, name, priority=prio))["id"]
    await client.post(f"{B}/workflows/{wf}/initialize_jobs")
    first = await client.post(f"{B}/workflows/{wf}/claim_next_jobs", params={"limit": 3})
    assert [j["name"] for j in first.json()["jobs"]] == ["high", "high2", "mid"]
    rest = await client.post(f"{B}/workflows/{wf}/claim_next_jobs")
    assert [j["name"] for j in rest.json()["jobs"]] == ["low", "low2"]


async def test_claim_by_resources_orders_by_priority_before_size(
    client: httpx.AsyncClient,
) -> None:
    wf = await _workflow(client)
    big = await client.post(
        f"{B}/resource_requirements",
        json={"workflow_id": wf, "name": "big", "num_cpus": 4, "memory": "1g", "runtime": "PT2H"},
    )
    rr = big.json()["id"]
    await _job(client, wf, "big_low", resource_requirements_id=rr)
    await _job(client, wf, "small_high", priority=3)
    await _job(client, wf, "small_low")
    await client.post(f"{B}/workflows/{wf}/initialize_jobs")
    resp = await client.post(f"{B}/workflows/{wf}/claim_jobs_based_on_resources/10", json=BIG)
    assert [j["name"] for j in resp.json()["jobs"]] == ["small_high", "big_low", "small_low"]


async def test_claim_by_resources_backfills_past_the_first_candidates(
    client: httpx.AsyncClient,
) -> None:
    """The first ``limit`` candidates do not fit together; the backfill pass fills the offer."""
    wf = await _workflow(client)
    wide = await client.post(
        f"{B}/resource_requirements",
        json={"workflow_id": wf, "name": "wide", "num_cpus": 3, "memory": "1m"},
    )
    rr = wide.json()["id"]
    for i in range(2):
        await _job(client, wf, f"wide{i}", priority=5, resource_requirements_id=rr)
    for i in range(3):
        await _job(client, wf, f"one{i}")
    await client.post(f"{B}/workflows/{wf}/initialize_jobs")
    offer = {"num_cpus": 4, "memory_gb": 1.0, "num_gpus": 0, "num_nodes": 1}
    resp = await client.post(f"{B}/workflows/{wf}/claim_jobs_based_on_resources/2", json=offer)
    # wide0 (3 CPUs) is taken, wide1 no longer fits; backfill adds one 1-CPU job.
    assert [j["name"] for j in resp.json()["jobs"]] == ["wide0", "one0"]


def test_eight_claimers_over_prioritized_jobs_claim_each_once_in_priority_order(
    db_url: str,
) -> None:
    engine = make_engine(db_url, pool_size=10)
    upgrade_database(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        wf = WorkflowService(s).create({"name": "conc", "user": "u"})["id"]
        JobService(s).create_many(
            [
                {"workflow_id": wf, "name": f"j{i}", "command": "true", "priority": i % 4}
                for i in range(400)
            ]
        )
        JobInitializer(s).initialize(wf)
    claimed: list[list[tuple[int, int]]] = [[] for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def claimer(i: int) -> None:
        try:
            barrier.wait()
            with factory() as s:
                service = ClaimService(s)
                while jobs := service.claim_next(wf, 5)["jobs"]:
                    claimed[i].append((min(j["priority"] for j in jobs), len(jobs)))
                    claimed[i].extend((j["id"], -1) for j in jobs)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    engine.dispose()
    assert errors == []
    ids = Counter(job_id for rows in claimed for job_id, kind in rows if kind == -1)
    assert len(ids) == 400
    assert set(ids.values()) == {1}
    # Each claimer sees priorities in non-increasing order.
    for rows in claimed:
        batches = [prio for prio, kind in rows if kind != -1]
        assert batches == sorted(batches, reverse=True)
