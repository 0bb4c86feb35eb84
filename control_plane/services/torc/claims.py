"""Claiming ready jobs atomically: ``claim_next_jobs`` and resource-aware claiming.

A job goes ``ready -> pending`` in a conditional ``UPDATE ... WHERE status = 'ready'``, so two
runners can never get the same job. PostgreSQL selects with ``FOR UPDATE SKIP LOCKED`` so
concurrent claimers take different rows without waiting; SQLite serialises writers with
``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import TorcJob, TorcResourceRequirements
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import (
    MAX_LIMIT,
    add_events,
    get_workflow_or_raise,
    job_event,
    parse_runtime,
)
from control_plane.services.torc.hot import HotPath
from control_plane.services.torc.relations import job_dict, load_relations
from control_plane.services.torc.txn import begin_write, is_sqlite, run_retrying

DEFAULT_CLAIM_LIMIT = 10
SORT_METHODS = ("gpus_runtime_memory", "gpus_memory_runtime", "none")
_OUTPUTS = ("output_file_ids", "output_user_data_ids")


class ClaimService:
    """Hands ready jobs to runners, each job to exactly one."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _check(self, workflow_id: int, limit: int) -> bool:
        if limit < 0 or limit > MAX_LIMIT:
            raise ValidationFailedError(
                f"Got limit {limit}; it must be between 0 and {MAX_LIMIT}", code="invalid_limit"
            )
        workflow = get_workflow_or_raise(self.session, workflow_id)
        return not workflow.is_canceled and limit > 0

    def _mark_pending(self, workflow_id: int, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            self.session.rollback()
            return []
        claimed = list(
            self.session.scalars(
                update(TorcJob)
                .where(TorcJob.id.in_(ids), TorcJob.status == "ready")
                .values(status="pending")
                .returning(TorcJob.id)
                .execution_options(synchronize_session=False)
            )
        )
        rows = list(
            self.session.scalars(
                select(TorcJob).where(TorcJob.id.in_(claimed)).order_by(TorcJob.id)
            )
        )
        add_events(
            self.session, workflow_id, [job_event(r.id, r.name, "ready", "pending") for r in rows]
        )
        self.session.commit()
        rels = load_relations(self.session, claimed, _OUTPUTS)
        order = {job_id: i for i, job_id in enumerate(ids)}
        rows.sort(key=lambda r: order[r.id])
        return [job_dict(r, rels.get(r.id)) for r in rows]

    def claim_next(self, workflow_id: int, limit: int = DEFAULT_CLAIM_LIMIT) -> dict[str, Any]:
        """Claim up to ``limit`` ready jobs (lowest ids first), ignoring resources."""
        if not self._check(workflow_id, limit):
            return {"jobs": []}

        return run_retrying(
            self.session, lambda: {"jobs": HotPath(self.session).claim_next(workflow_id, limit)}
        )

    def claim_by_resources(
        self,
        workflow_id: int,
        limit: int,
        resources: dict[str, Any],
        *,
        sort_method: str | None = None,
        strict_scheduler_match: bool = False,
    ) -> dict[str, Any]:
        """Claim ready jobs that fit, together, in the capacity a runner reports.

        Raises:
            ValidationFailedError: bad ``time_limit``, ``sort_method`` or ``limit``.
        """
        if sort_method is not None and sort_method not in SORT_METHODS:
            raise ValidationFailedError(
                f"Got sort_method '{sort_method}'; expected one of {', '.join(SORT_METHODS)}"
            )
        time_cap = (
            parse_runtime(resources["time_limit"]) if resources.get("time_limit") else float("inf")
        )
        workflow = get_workflow_or_raise(self.session, workflow_id)
        if workflow.is_canceled:
            return {"jobs": [], "reason": "Workflow is canceled"}
        if not self._check(workflow_id, limit):
            return {"jobs": []}

        def work() -> dict[str, Any]:
            begin_write(self.session)
            rows = self._candidates(workflow_id, limit, resources, time_cap, sort_method, True)
            if not rows and not strict_scheduler_match:
                rows = self._candidates(workflow_id, limit, resources, time_cap, sort_method, False)
            return {"jobs": self._mark_pending(workflow_id, self._pack(rows, resources))}

        return run_retrying(self.session, work)

    def _candidates(
        self,
        workflow_id: int,
        limit: int,
        res: dict[str, Any],
        time_cap: float,
        sort_method: str | None,
        match_scheduler: bool,
    ) -> list[Any]:
        rr = TorcResourceRequirements
        cpus = func.coalesce(rr.num_cpus, 1)
        gpus = func.coalesce(rr.num_gpus, 0)
        nodes = func.coalesce(rr.num_nodes, 1)
        memory = func.coalesce(rr.memory_bytes, 1024 * 1024)
        runtime = func.coalesce(rr.runtime_s, 60.0)
        mem_cap = int(float(res["memory_gb"]) * 1024**3)
        query = (
            select(
                TorcJob.id,
                cpus.label("cpus"),
                gpus.label("gpus"),
                nodes.label("nodes"),
                memory.label("memory"),
            )
            .outerjoin(rr, rr.id == TorcJob.resource_requirements_id)
            .where(
                TorcJob.workflow_id == workflow_id,
                TorcJob.status == "ready",
                cpus <= res["num_cpus"],
                gpus <= res["num_gpus"],
                nodes <= res["num_nodes"],
                memory <= mem_cap,
            )
        )
        if time_cap != float("inf"):
            query = query.where(runtime <= time_cap)
        if match_scheduler and res.get("scheduler_config_id") is not None:
            query = query.where(
                (TorcJob.scheduler_id.is_(None))
                | (TorcJob.scheduler_id == res["scheduler_config_id"])
            )
        if sort_method in (None, "gpus_runtime_memory"):
            query = query.order_by(gpus.desc(), runtime.desc(), memory.desc(), TorcJob.id)
        elif sort_method == "gpus_memory_runtime":
            query = query.order_by(gpus.desc(), memory.desc(), runtime.desc(), TorcJob.id)
        else:
            query = query.order_by(TorcJob.id)
        query = query.limit(limit)
        if not is_sqlite(self.session):
            query = query.with_for_update(skip_locked=True, of=TorcJob)
        return list(self.session.execute(query))

    @staticmethod
    def _pack(rows: list[Any], res: dict[str, Any]) -> list[int]:
        """Greedy packing in candidate order (single-node jobs share nodes)."""
        cpus = gpus = memory = nodes = 0
        mem_cap = float(res["memory_gb"]) * 1024**3
        chosen = []
        for row in rows:
            multi = row.nodes > 1
            if (
                cpus + row.cpus <= res["num_cpus"]
                and gpus + row.gpus <= res["num_gpus"]
                and memory + row.memory <= mem_cap
                and (not multi or nodes + row.nodes <= res["num_nodes"])
            ):
                cpus += row.cpus
                gpus += row.gpus
                memory += row.memory
                nodes += row.nodes if multi else 0
                chosen.append(row.id)
        return chosen
