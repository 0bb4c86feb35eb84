"""Dynamic jobs (API 0.21): a running job adds jobs to its workflow with ``spawn_jobs``.

One transaction inserts the jobs ``blocked`` on the caller (plus any ``depends_on`` names:
existing jobs or siblings), with ``origin='spawn'`` and ``TORC_ORCHESTRATOR_LINEAGE_ID`` in
their ``env``, and records the lineage's generation as ephemeral user data
``__torc_lineage__<lineage>__g<NNNNNN>``; the workflow's ``dynamic_jobs.max_iterations``
(default 1000) caps the generations. Replaying a request whose names all exist answers the
existing ids (idempotent); a partial overlap is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcJob,
    TorcResourceRequirements,
    TorcUserData,
    TorcWorkflow,
)
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import add_events
from control_plane.services.torc.graph import find_cycle
from control_plane.services.torc.jobs import check_priority, get_job_or_raise
from control_plane.services.torc.relations import insert_relations
from control_plane.services.torc.state_machine import FINISHED, JobEvent, target
from control_plane.services.torc.txn import begin_write, run_retrying

DEFAULT_MAX_ITERATIONS = 1000
LINEAGE_PREFIX = "__torc_lineage__"
_GENERATION = re.compile(r"__g(\d{6})$")


def _refuse(message: str, code: str = "invalid_spawn") -> ValidationFailedError:
    return ValidationFailedError(message, code=code)


class SpawnService:
    """``POST /jobs/{id}/spawn_jobs``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def spawn(
        self,
        job_id: int,
        jobs: list[dict[str, Any]],
        *,
        lineage: str | None = None,
        state: Any = None,
    ) -> dict[str, Any]:
        """Add ``jobs`` blocked on job ``job_id``, all or nothing.

        Returns:
            ``{"spawned_job_ids": [...], "iteration": n}``.

        Raises:
            NotFoundError: unknown caller job.
            ValidationFailedError: duplicate or partly existing names, unknown ``depends_on``
                or ``resource_requirements`` names, a cycle among siblings, a negative
                priority, or the ``max_iterations`` cap reached.
        """
        return run_retrying(self.session, lambda: self._spawn(job_id, jobs, lineage, state))

    def _spawn(
        self, job_id: int, jobs: list[dict[str, Any]], lineage: str | None, state: Any
    ) -> dict[str, Any]:
        begin_write(self.session)
        caller = get_job_or_raise(self.session, job_id)
        wf = caller.workflow_id
        lineage = lineage or caller.name
        prefix = f"{LINEAGE_PREFIX}{lineage}__"
        generations = [
            int(m.group(1))
            for name in self.session.scalars(
                select(TorcUserData.name).where(
                    TorcUserData.workflow_id == wf, TorcUserData.name.startswith(prefix)
                )
            )
            if (m := _GENERATION.search(name))
        ]
        current = max(generations, default=0)
        existing: dict[str, list[tuple[int, str]]] = {}
        for jid, name, status in self.session.execute(
            select(TorcJob.id, TorcJob.name, TorcJob.status).where(TorcJob.workflow_id == wf)
        ).all():
            existing.setdefault(name, []).append((jid, status))
        names = [j["name"] for j in jobs]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise _refuse(f"Got job name '{dup}' twice in one spawn_jobs request")
        present = [n for n in names if n in existing]
        if jobs and len(present) == len(names):
            # Idempotent replay: every name exists, answer the existing jobs.
            self.session.rollback()
            return {
                "spawned_job_ids": [max(i for i, _ in existing[n]) for n in names],
                "iteration": current,
            }
        if present:
            raise _refuse(
                f"Got job names {present} that already exist beside new ones; a replay must "
                "repeat the whole request"
            )
        if not jobs:
            self._record(wf, f"{prefix}final", {"generation": current, "state": state})
            self.session.commit()
            return {"spawned_job_ids": [], "iteration": current}
        cap = self._cap(wf)
        if current + 1 > cap:
            raise _refuse(
                f"Lineage '{lineage}' reached dynamic_jobs.max_iterations {cap}; no more "
                "spawn_jobs iterations",
                code="max_iterations_reached",
            )
        rr_names = {j["resource_requirements"] for j in jobs if j.get("resource_requirements")}
        rrs = dict(
            self.session.execute(
                select(TorcResourceRequirements.name, TorcResourceRequirements.id).where(
                    TorcResourceRequirements.workflow_id == wf,
                    TorcResourceRequirements.name.in_(sorted(rr_names)),
                )
            ).all()
        )
        default_rr = self.session.scalar(
            select(TorcResourceRequirements.id).where(
                TorcResourceRequirements.workflow_id == wf,
                TorcResourceRequirements.name == "default",
            )
        )
        for job in jobs:
            rr = job.get("resource_requirements")
            if rr and rr not in rrs:
                raise _refuse(
                    f"Got resource_requirements '{rr}' for job '{job['name']}'; no such "
                    f"resource requirements in workflow {wf}"
                )
            check_priority(job.get("priority") or 0)
            for dep in job.get("depends_on") or []:
                if dep not in existing and dep not in names:
                    raise _refuse(
                        f"Got depends_on '{dep}' for job '{job['name']}'; no job or sibling "
                        "has that name"
                    )
        index = {n: i for i, n in enumerate(names)}
        sibling_edges = {
            index[j["name"]]: [index[d] for d in j.get("depends_on") or [] if d in index]
            for j in jobs
        }
        cycle = find_cycle(range(len(jobs)), sibling_edges)
        if cycle:
            raise _refuse(
                "Dependency cycle among spawned jobs: " + " -> ".join(names[i] for i in cycle),
                code="workflow_cycle_detected",
            )
        env = json.dumps({"TORC_ORCHESTRATOR_LINEAGE_ID": lineage})
        blocked = target(JobEvent.INITIALIZE_BLOCKED)
        values = [
            {
                "workflow_id": wf,
                "name": j["name"],
                "command": j["command"],
                "status": blocked,
                "cancel_on_blocking_job_failure": j.get("cancel_on_blocking_job_failure")
                is not False,
                "supports_termination": False,
                "resource_requirements_id": rrs.get(j.get("resource_requirements") or "")
                or default_rr,
                "attempt_id": 1,
                "priority": j.get("priority") or 0,
                "env": env,
                "origin": "spawn",
            }
            for j in jobs
        ]
        ids = [
            r.id
            for r in self.session.execute(
                insert(TorcJob).returning(TorcJob.id, sort_by_parameter_order=True), values
            )
        ]
        by_name = dict(zip(names, ids, strict=True))
        rels = []
        for job, new_id in zip(jobs, ids, strict=True):
            deps = {job_id}
            for dep in job.get("depends_on") or []:
                deps.add(by_name[dep] if dep in by_name else max(i for i, _ in existing[dep]))
            rels.append((new_id, {"depends_on_job_ids": sorted(deps)}))
        insert_relations(self.session, wf, rels)
        self._promote(rels, existing)
        generation = current + 1
        self._record(
            wf,
            f"{prefix}g{generation:06d}",
            {"generation": generation, "spawn_count": len(ids), "state": state},
        )
        add_events(
            self.session,
            wf,
            [
                {
                    "category": "job",
                    "event_type": "jobs_spawned",
                    "job_id": job_id,
                    "lineage": lineage,
                    "iteration": generation,
                    "spawned_job_ids": ids,
                }
            ],
        )
        self.session.commit()
        return {"spawned_job_ids": ids, "iteration": generation}

    def _cap(self, workflow_id: int) -> int:
        text = self.session.scalar(
            select(TorcWorkflow.dynamic_jobs).where(TorcWorkflow.id == workflow_id)
        )
        cap = (json.loads(text) or {}).get("max_iterations") if text else None
        return DEFAULT_MAX_ITERATIONS if cap is None else int(cap)

    def _record(self, workflow_id: int, name: str, data: dict[str, Any]) -> None:
        self.session.add(
            TorcUserData(workflow_id=workflow_id, name=name, is_ephemeral=True, data=data)
        )

    def _promote(
        self, rels: list[tuple[int, dict[str, Any]]], existing: dict[str, list[tuple[int, str]]]
    ) -> None:
        """Make spawned jobs whose dependencies all finished already ready at once.

        That is the case when the caller finished before spawning; jobs waiting on a sibling
        stay blocked until the normal unblock path.
        """
        status = {i: s for jobs in existing.values() for i, s in jobs}
        ready = [
            new_id
            for new_id, rel in rels
            if all(status.get(d) in FINISHED for d in rel["depends_on_job_ids"])
        ]
        if ready:
            self.session.execute(
                update(TorcJob)
                .where(TorcJob.id.in_(ready))
                .values(status=target(JobEvent.DEPENDENCIES_FINISHED))
                .execution_options(synchronize_session=False)
            )
