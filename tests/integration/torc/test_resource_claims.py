"""``claim_jobs_based_on_resources``: filters, sort methods, scheduler matching and packing."""

from __future__ import annotations

from typing import Any

import httpx

B = "/torc-service/v1"
OFFER = {"num_cpus": 10, "memory_gb": 8.0, "num_gpus": 1, "num_nodes": 1}


async def _setup(client: httpx.AsyncClient) -> dict[str, int]:
    await client.post(f"{B}/workflows", json={"name": "w", "user": "u"})
    rrs = {
        "gpu": {"num_gpus": 1, "memory": "1g", "runtime": "PT1H"},
        "mem": {"memory": "4g", "runtime": "PT10M"},
        "long": {"memory": "1g", "runtime": "PT5H"},
        "multi": {"num_nodes": 2},
    }
    rr_ids = {}
    for name, body in rrs.items():
        made = await client.post(
            f"{B}/resource_requirements", json={"workflow_id": 1, "name": name, **body}
        )
        rr_ids[name] = made.json()["id"]
    jobs: list[tuple[str, dict[str, Any]]] = [
        ("d", {}),
        ("e", {"scheduler_id": 7}),
        ("c", {"resource_requirements_id": rr_ids["long"]}),
        ("b", {"resource_requirements_id": rr_ids["mem"]}),
        ("a", {"resource_requirements_id": rr_ids["gpu"]}),
        ("m", {"resource_requirements_id": rr_ids["multi"]}),
    ]
    ids = {}
    for name, extra in jobs:
        made = await client.post(
            f"{B}/jobs", json={"workflow_id": 1, "name": name, "command": "true", **extra}
        )
        ids[name] = made.json()["id"]
    await client.post(f"{B}/workflows/1/initialize_jobs")
    return ids


async def _claim(
    client: httpx.AsyncClient, limit: int = 10, offer: dict[str, Any] | None = None, **query: Any
) -> list[str]:
    resp = await client.post(
        f"{B}/workflows/1/claim_jobs_based_on_resources/{limit}",
        params=query,
        json=offer or OFFER,
    )
    assert resp.status_code == 200, resp.text
    jobs = resp.json()["jobs"]
    assert all(j["status"] == "pending" for j in jobs)
    if jobs:  # back to ready for the next claim
        await client.post(f"{B}/workflows/1/reset_job_status")
        await client.post(f"{B}/workflows/1/initialize_jobs")
    return [j["name"] for j in jobs]


async def test_claims_follow_the_sort_method(client: httpx.AsyncClient) -> None:
    await _setup(client)
    assert await _claim(client) == ["a", "c", "b", "d", "e"]
    assert await _claim(client, sort_method="gpus_runtime_memory") == ["a", "c", "b", "d", "e"]
    assert await _claim(client, sort_method="gpus_memory_runtime") == ["a", "b", "c", "d", "e"]
    assert await _claim(client, sort_method="none") == ["d", "e", "c", "b", "a"]


async def test_claims_filter_by_time_limit_nodes_and_gpus(client: httpx.AsyncClient) -> None:
    await _setup(client)
    assert await _claim(client, offer={**OFFER, "time_limit": "PT2H"}) == ["a", "b", "d", "e"]
    assert await _claim(client, offer={**OFFER, "num_nodes": 2}) == ["a", "c", "b", "d", "e", "m"]
    # Two CPUs and no GPU: the GPU job is filtered out, then packing stops at two jobs.
    assert await _claim(client, offer={**OFFER, "num_gpus": 0, "num_cpus": 2}) == ["c", "b"]
    # The limit applies to candidates, before packing.
    assert await _claim(client, limit=1) == ["a"]


async def test_claims_match_the_scheduler_and_fall_back_unless_strict(
    client: httpx.AsyncClient,
) -> None:
    await _setup(client)
    assert await _claim(client, offer={**OFFER, "scheduler_config_id": 9}) == ["a", "c", "b", "d"]
    assert await _claim(client, offer={**OFFER, "scheduler_config_id": 7}) == [
        "a",
        "c",
        "b",
        "d",
        "e",
    ]
    first = await client.post(
        f"{B}/workflows/1/claim_jobs_based_on_resources/10",
        json={**OFFER, "scheduler_config_id": 9},
    )
    assert [j["name"] for j in first.json()["jobs"]] == ["a", "c", "b", "d"]
    # Only "e" (scheduler 7) is left: strict matching finds nothing, otherwise it falls back.
    strict = await client.post(
        f"{B}/workflows/1/claim_jobs_based_on_resources/10",
        params={"strict_scheduler_match": True},
        json={**OFFER, "scheduler_config_id": 9},
    )
    assert strict.json() == {"jobs": []}
    assert await _claim(client, offer={**OFFER, "scheduler_config_id": 9}) == ["e"]


async def test_claims_on_a_canceled_or_unknown_workflow(client: httpx.AsyncClient) -> None:
    await _setup(client)
    missing = await client.post(f"{B}/workflows/9/claim_jobs_based_on_resources/1", json=OFFER)
    assert missing.status_code == 404
    await client.put(f"{B}/workflows/1/cancel")
    canceled = await client.post(f"{B}/workflows/1/claim_jobs_based_on_resources/-1", json=OFFER)
    assert canceled.json() == {"jobs": [], "reason": "Workflow is canceled"}
