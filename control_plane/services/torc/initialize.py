"""``initialize_jobs`` and ``process_changed_job_inputs``.

Dependencies, blocked vs ready,
input hashes. Bulk SQL throughout; the graph is evaluated in memory.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcFile,
    TorcJob,
    TorcJobDependency,
    TorcJobFile,
    TorcJobUserData,
    TorcUserData,
)
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.actions import rearm_actions
from control_plane.services.torc.common import add_events, get_workflow_or_raise, job_event
from control_plane.services.torc.graph import downstream, find_cycle, input_hash
from control_plane.services.torc.state_machine import (
    FINISHED,
    JobEvent,
    JobStatus,
    step,
    target,
)
from control_plane.services.torc.txn import begin_write, bulk_set, bulk_status, run_retrying

_IMPLICIT_EDGES = """
INSERT INTO torc_job_dependencies (job_id, depends_on_job_id, workflow_id)
SELECT DISTINCT c.job_id, p.job_id, :wf FROM {table} c
JOIN {table} p ON c.{ref} = p.{ref} AND p.direction = 'out'
WHERE c.workflow_id = :wf AND c.direction = 'in' AND NOT EXISTS (
  SELECT 1 FROM torc_job_dependencies d
  WHERE d.job_id = c.job_id AND d.depends_on_job_id = p.job_id)
"""


class JobInitializer:
    """Evaluates a workflow's dependency graph and sets job statuses."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def initialize(self, workflow_id: int, *, only_uninitialized: bool = False) -> dict[str, Any]:
        """Add implicit edges, reject cycles, set blocked/ready, store input hashes.

        Raises:
            NotFoundError: unknown workflow.
            ValidationFailedError: the dependency graph has a cycle (named in the message).
        """
        get_workflow_or_raise(self.session, workflow_id)
        return run_retrying(self.session, lambda: self._initialize(workflow_id, only_uninitialized))

    def _initialize(self, workflow_id: int, only_uninitialized: bool) -> dict[str, Any]:
        begin_write(self.session)
        for table, ref in (("torc_job_files", "file_id"), ("torc_job_user_data", "user_data_id")):
            self.session.execute(
                text(_IMPLICIT_EDGES.format(table=table, ref=ref)), {"wf": workflow_id}
            )
        jobs = {
            row.id: row
            for row in self.session.execute(
                select(TorcJob.id, TorcJob.name, TorcJob.status).where(
                    TorcJob.workflow_id == workflow_id
                )
            )
        }
        deps: dict[int, list[int]] = defaultdict(list)
        users: dict[int, list[int]] = defaultdict(list)
        for job_id, dep in self.session.execute(
            select(TorcJobDependency.job_id, TorcJobDependency.depends_on_job_id).where(
                TorcJobDependency.workflow_id == workflow_id
            )
        ):
            deps[job_id].append(dep)
            users[dep].append(job_id)
        cycle = find_cycle(jobs, deps)
        if cycle is not None:
            names = " -> ".join(f"{jobs[j].name} (id {j})" for j in cycle)
            raise ValidationFailedError(
                f"Dependency cycle detected: {names}",
                code="workflow_cycle_detected",
                cycle=cycle,
            )
        status = {j: JobStatus(row.status) for j, row in jobs.items()}
        uninitialized = target(JobEvent.INITIALIZE_UPSTREAM)
        if only_uninitialized:
            starts = [j for j, s in status.items() if s == uninitialized]
            for j in downstream(starts, users):
                status[j] = step(JobEvent.INITIALIZE_UPSTREAM, status[j])
        snapshot = dict(status)
        for j in status:
            if only_uninitialized and status[j] != uninitialized:
                continue
            if any(snapshot[d] not in FINISHED for d in deps[j]):
                status[j] = step(JobEvent.INITIALIZE_BLOCKED, status[j])
        for j, s in status.items():
            status[j] = step(JobEvent.INITIALIZE_READY, s)
        changed: dict[JobStatus, list[int]] = defaultdict(list)
        for j, s in status.items():
            if s != jobs[j].status:
                changed[s].append(j)
        bulk_status(self.session, TorcJob, changed)
        self.session.execute(
            update(TorcJob)
            .where(TorcJob.workflow_id == workflow_id, TorcJob.status.not_in(sorted(FINISHED)))
            .values(current_result_id=None)
            .execution_options(synchronize_session=False)
        )
        bulk_set(self.session, TorcJob, "input_hash", self._hashes(workflow_id, jobs, deps))
        # One event records every transition of the pass (10,000 rows per initialize would
        # cost more than the initialization itself).
        events = [
            {
                "category": "workflow",
                "event_type": "workflow_started"
                if only_uninitialized
                else "workflow_reinitialized",
                "counts": {s: len(ids) for s, ids in changed.items()},
                "transitions": {s: sorted(ids) for s, ids in changed.items()},
            }
        ]
        add_events(self.session, workflow_id, events)
        rearm_actions(self.session, workflow_id, status, only_uninitialized=only_uninitialized)
        self.session.commit()
        return {"message": "Initialized job status"}

    def _hashes(
        self, workflow_id: int, jobs: dict[int, Any], deps: dict[int, list[int]]
    ) -> dict[int, str]:
        docs: dict[int, dict[str, Any]] = {j: {"depends_on_job_ids": sorted(deps[j])} for j in jobs}
        for key in (
            "input_file_ids",
            "output_file_ids",
            "input_user_data_ids",
            "output_user_data_ids",
        ):
            for doc in docs.values():
                doc[key] = []
        mtimes = dict(
            self.session.execute(
                select(TorcFile.id, TorcFile.st_mtime).where(TorcFile.workflow_id == workflow_id)
            ).all()
        )
        data: dict[int, Any] = dict(
            self.session.execute(
                select(TorcUserData.id, TorcUserData.data).where(
                    TorcUserData.workflow_id == workflow_id
                )
            ).all()
        )
        for job_id, file_id, direction in self.session.execute(
            select(TorcJobFile.job_id, TorcJobFile.file_id, TorcJobFile.direction).where(
                TorcJobFile.workflow_id == workflow_id
            )
        ):
            docs[job_id][f"{'input' if direction == 'in' else 'output'}_file_ids"].append(file_id)
            if direction == "in":
                docs[job_id].setdefault("input_file_mtimes", {})[str(file_id)] = mtimes.get(file_id)
        for job_id, ud_id, direction in self.session.execute(
            select(
                TorcJobUserData.job_id, TorcJobUserData.user_data_id, TorcJobUserData.direction
            ).where(TorcJobUserData.workflow_id == workflow_id)
        ):
            docs[job_id][f"{'input' if direction == 'in' else 'output'}_user_data_ids"].append(
                ud_id
            )
            if direction == "in":
                docs[job_id].setdefault("input_user_data", {})[str(ud_id)] = data.get(ud_id)
        for job in self.session.execute(
            select(TorcJob.id, TorcJob.command, TorcJob.invocation_script).where(
                TorcJob.workflow_id == workflow_id
            )
        ):
            docs[job.id]["command"] = job.command
            docs[job.id]["invocation_script"] = job.invocation_script
        for doc in docs.values():
            for value in doc.values():
                if isinstance(value, list):
                    value.sort()
        return {j: input_hash(doc) for j, doc in docs.items()}

    def process_changed_inputs(self, workflow_id: int, *, dry_run: bool = False) -> dict[str, Any]:
        """Jobs whose inputs changed since the last initialize; reset them unless ``dry_run``."""
        get_workflow_or_raise(self.session, workflow_id)

        def work() -> dict[str, Any]:
            if not dry_run:
                begin_write(self.session)
            rows = self.session.execute(
                select(TorcJob.id, TorcJob.name, TorcJob.status, TorcJob.input_hash)
                .where(TorcJob.workflow_id == workflow_id)
                .order_by(TorcJob.id)
            ).all()
            deps: dict[int, list[int]] = defaultdict(list)
            for job_id, dep in self.session.execute(
                select(TorcJobDependency.job_id, TorcJobDependency.depends_on_job_id).where(
                    TorcJobDependency.workflow_id == workflow_id
                )
            ):
                deps[job_id].append(dep)
            current = self._hashes(workflow_id, {r.id: r for r in rows}, deps)
            changed = [
                r for r in rows if r.input_hash is not None and current[r.id] != r.input_hash
            ]
            if not dry_run and changed:
                reset = target(JobEvent.INPUTS_CHANGED)
                bulk_status(self.session, TorcJob, {reset: [r.id for r in changed]})
                add_events(
                    self.session,
                    workflow_id,
                    [
                        job_event(r.id, r.name, r.status, reset, reason="inputs_changed")
                        for r in changed
                    ],
                )
                self.session.commit()
            else:
                self.session.rollback()
            return {"reinitialized_jobs": [r.name for r in changed]}

        return run_retrying(self.session, work)
