"""Claims are atomic under concurrency.

Many claimers in parallel never get the same job (SQLite and PostgreSQL),
and parallel completions never leave a dependent stuck in ``blocked``.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from control_plane.db.session import make_engine, make_session_factory, upgrade_database
from control_plane.services.torc import (
    ClaimService,
    ComputeNodeService,
    JobInitializer,
    JobService,
    JobTransitionService,
    ResourceRequirementsService,
    WorkflowService,
)


def _factory(db_url: str) -> sessionmaker[Session]:
    engine = make_engine(db_url, pool_size=10)
    upgrade_database(engine)
    return make_session_factory(engine)


def _parallel(n: int, target: object) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)


def test_eight_claimers_each_job_claimed_exactly_once(db_url: str, tmp_path: Path) -> None:
    factory = _factory(db_url)
    with factory() as s:
        wf = WorkflowService(s).create({"name": "conc", "user": "u"})["id"]
        JobService(s).create_many(
            [{"workflow_id": wf, "name": f"j{i}", "command": "true"} for i in range(500)]
        )
        JobInitializer(s).initialize(wf)
    claimed: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def claimer(i: int) -> None:
        try:
            barrier.wait()
            with factory() as s:
                service = ClaimService(s)
                while jobs := service.claim_next(wf, 7)["jobs"]:
                    claimed[i].extend(j["id"] for j in jobs)
        except BaseException as exc:
            errors.append(exc)

    _parallel(8, claimer)
    assert errors == []
    counts = Counter(job_id for ids in claimed for job_id in ids)
    assert len(counts) == 500
    assert set(counts.values()) == {1}
    assert sum(1 for ids in claimed if ids) > 1, "claims were not spread over claimers"


def test_eight_resource_claimers_each_job_claimed_once_within_the_offer(db_url: str) -> None:
    """``claim_jobs_based_on_resources`` (the built-in runner's claim) under contention."""
    factory = _factory(db_url)
    with factory() as s:
        wf = WorkflowService(s).create({"name": "res", "user": "u"})["id"]
        rr = ResourceRequirementsService(s).create(
            {"workflow_id": wf, "name": "two", "num_cpus": 2, "memory": "1g"}
        )["id"]
        JobService(s).create_many(
            [
                {
                    "workflow_id": wf,
                    "name": f"j{i}",
                    "command": "true",
                    "resource_requirements_id": rr if i % 3 == 0 else None,
                }
                for i in range(300)
            ]
        )
        JobInitializer(s).initialize(wf)
    offer = {"num_cpus": 4, "memory_gb": 4.0, "num_gpus": 0, "num_nodes": 1}
    claimed: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def claimer(i: int) -> None:
        try:
            barrier.wait()
            with factory() as s:
                service = ClaimService(s)
                while jobs := service.claim_by_resources(wf, 4, offer)["jobs"]:
                    assert all(j["status"] == "pending" for j in jobs)
                    cpus = sum(2 if j["resource_requirements_id"] == rr else 1 for j in jobs)
                    assert cpus <= offer["num_cpus"]
                    claimed[i].extend(j["id"] for j in jobs)
        except BaseException as exc:
            errors.append(exc)

    _parallel(8, claimer)
    assert errors == []
    counts = Counter(job_id for ids in claimed for job_id in ids)
    assert len(counts) == 300
    assert set(counts.values()) == {1}
    assert sum(1 for ids in claimed if ids) > 1, "claims were not spread over claimers"


def test_parallel_completions_unblock_every_dependent(db_url: str) -> None:
    """A layered DAG (each job depends on two of the previous layer) run by 8 workers."""
    factory = _factory(db_url)
    width, depth = 20, 5
    with factory() as s:
        wf = WorkflowService(s).create({"name": "dag", "user": "u"})["id"]
        node = ComputeNodeService(s).create({"workflow_id": wf, "hostname": "h"})["id"]
        previous: list[int] = []
        for layer in range(depth):
            jobs = [
                {
                    "workflow_id": wf,
                    "name": f"l{layer}-{i}",
                    "command": "true",
                    "depends_on_job_ids": [previous[i], previous[(i + 1) % width]]
                    if previous
                    else [],
                }
                for i in range(width)
            ]
            previous = [j["id"] for j in JobService(s).create_many(jobs)]
        JobInitializer(s).initialize(wf)
    errors: list[BaseException] = []
    done: list[int] = []

    def worker(i: int) -> None:
        try:
            with factory() as s:
                claims, transitions, idle = ClaimService(s), JobTransitionService(s), 0
                while idle < 200:
                    jobs = claims.claim_next(wf, 2)["jobs"]
                    if not jobs:
                        if WorkflowService(s).is_complete(wf)["is_complete"]:
                            return
                        idle += 1
                        threading.Event().wait(0.01)
                        continue
                    for job in jobs:
                        transitions.start(job["id"], 0, node)
                        transitions.complete(job["id"], "completed", 0, {"return_code": 0})
                        done.append(job["id"])
        except BaseException as exc:
            errors.append(exc)

    _parallel(8, worker)
    assert errors == []
    assert len(done) == width * depth == len(set(done))
    with factory() as s:
        assert WorkflowService(s).is_complete(wf)["is_complete"] is True
