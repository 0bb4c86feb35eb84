"""The retirement registry's bookkeeping and the replicas' refusals, without Ray.

The registry runs as a Ray actor in tests/reliability/test_delete_means_gone.py; here its class
is driven directly on an event loop, as the actor would run it.
"""

from __future__ import annotations

import asyncio
import json

from deployments.retire import (
    Retirement,
    TombstoneBook,
    ts_model_gone,
    ts_workflow_gone,
    v2_gone,
)


async def test_retire_waits_for_every_watcher_to_confirm():
    book = TombstoneBook()
    first = await book.watch("p-wf-a", "r1", -1, wait_s=0)
    second = await book.watch("p-wf-a", "r2", -1, wait_s=0)
    assert first == (0, [])
    assert second == (0, [])
    polls = [
        asyncio.ensure_future(book.watch("p-wf-a", r, 0, wait_s=5)) for r in ("r1", "r2")
    ]
    retire = asyncio.ensure_future(book.retire("p-wf-a", "", timeout_s=5))
    results = await asyncio.gather(*polls)
    assert results == [(1, [""]), (1, [""])]
    await asyncio.sleep(0.05)
    assert not retire.done()  # told, but neither replica has confirmed yet
    await book.watch("p-wf-a", "r1", 1, wait_s=0)
    await asyncio.sleep(0.05)
    assert not retire.done()
    await book.watch("p-wf-a", "r2", 1, wait_s=0)
    assert await asyncio.wait_for(retire, 1) == (2, 2)


async def test_retire_times_out_on_a_silent_watcher():
    book = TombstoneBook()
    await book.watch("p-ts-m", "r1", -1, wait_s=0)
    assert await book.retire("p-ts-m", "2.0", timeout_s=0.2) == (0, 1)


async def test_late_replica_of_a_retired_app_refuses_until_restored():
    book = TombstoneBook()
    assert await book.retire("p-v2-m", "", timeout_s=0.1) == (0, 0)
    assert await book.watch("p-v2-m", "late", -1, wait_s=0) == (0, [""])
    book.restore("p-v2-m")
    assert await book.watch("p-v2-m", "new", -1, wait_s=0) == (0, [])
    # the old replica keeps its tombstone after the restore
    assert await book.watch("p-v2-m", "late", 0, wait_s=0) == (0, [""])


async def test_version_tombstone_reaches_only_replicas_running_then():
    book = TombstoneBook()
    await book.watch("p-ts-m", "old", -1, wait_s=0)
    poll = asyncio.ensure_future(book.watch("p-ts-m", "old", 0, wait_s=5))
    retire = asyncio.ensure_future(book.retire("p-ts-m", "2.0", timeout_s=5))
    assert await poll == (1, ["2.0"])
    await book.watch("p-ts-m", "old", 1, wait_s=0)
    assert await retire == (1, 1)
    assert await book.watch("p-ts-m", "fresh", -1, wait_s=0) == (0, [])


def _retired(*scopes: str) -> Retirement:
    retirement = Retirement()  # outside a replica: no registry, nothing refused
    assert retirement.scopes == frozenset()
    retirement.scopes = frozenset(scopes)
    return retirement


def test_refusals_use_each_surface_404():
    assert v2_gone(_retired(), "m", "/v2/models/m/infer") is None
    ready = v2_gone(_retired(""), "m", "/v2/models/m/versions/1/ready")
    assert ready is not None
    assert ready.status_code == 400
    assert ready.body == b""
    stats = v2_gone(_retired(""), "m", "/v2/models/m/stats")
    assert stats is not None
    assert stats.status_code == 400
    infer = v2_gone(_retired(""), "m", "/v2/models/m/infer")
    assert infer is not None
    assert infer.status_code == 404
    assert json.loads(infer.body) == {
        "error": "Request for unknown model: 'm' has no available versions"
    }

    assert ts_model_gone(_retired("2.0"), "m", "1.0") is None
    version = ts_model_gone(_retired("2.0"), "m", "2.0")
    assert version is not None
    assert version.ts_type == "ModelVersionNotFoundException"
    whole = ts_model_gone(_retired(""), "m", "1.0")
    assert whole is not None
    assert (whole.ts_type, whole.message) == ("ModelNotFoundException", "Model not found: m")

    assert ts_workflow_gone(_retired(), "w") is None
    gone = ts_workflow_gone(_retired(""), "w")
    assert gone is not None
    assert (gone.ts_type, gone.message) == ("WorkflowNotFoundException", "Workflow not found: w")
