"""Job transitions after claiming.

Start, complete (with immediate unblocking and cascading
cancellation), manage_status_change, retry and reset.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcComputeNode,
    TorcJob,
    TorcJobDependency,
    TorcWorkflow,
)
from control_plane.errors import NotFoundError, ValidationFailedError
from control_plane.services.torc.common import (
    add_events,
    get_workflow_or_raise,
    job_event,
    now_iso,
)
from control_plane.services.torc.completion import CompletionPath
from control_plane.services.torc.graph import downstream
from control_plane.services.torc.job_rows import job_wire
from control_plane.services.torc.jobs import get_job_or_raise
from control_plane.services.torc.relations import load_relations
from control_plane.services.torc.state_machine import (
    FINISHED,
    FINISHED_LABEL,
    JobEvent,
    can,
    parse_status,
    sources,
    target,
    targets,
)
from control_plane.services.torc.txn import begin_write, bulk_status, is_sqlite, run_retrying


class JobTransitionService:
    """The job state machine from ``pending`` onwards."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _locked_job(self, job_id: int) -> TorcJob:
        query = (
            select(TorcJob).where(TorcJob.id == job_id).execution_options(populate_existing=True)
        )
        if not is_sqlite(self.session):
            query = query.with_for_update()
        job = self.session.scalar(query)
        if job is None:
            raise NotFoundError(f"Job not found with ID: {job_id}", code="job_not_found")
        return job

    def _check_run(self, job: TorcJob, run_id: int) -> TorcWorkflow:
        workflow = get_workflow_or_raise(self.session, job.workflow_id)
        if workflow.run_id != run_id:
            raise ValidationFailedError(
                f"Run ID mismatch: provided {run_id} but workflow status has {workflow.run_id}",
                code="run_id_mismatch",
            )
        return workflow

    def _node(self, compute_node_id: int | None) -> None:
        if (
            compute_node_id is not None
            and self.session.get(TorcComputeNode, compute_node_id) is None
        ):
            raise NotFoundError(
                f"Compute node not found with ID: {compute_node_id}", code="compute_node_not_found"
            )

    def start(self, job_id: int, run_id: int, compute_node_id: int) -> dict[str, Any]:
        """``pending -> running`` on a compute node.

        Raises:
            NotFoundError: unknown job or compute node.
            ValidationFailedError: job not pending, or run id mismatch.
        """

        def work() -> dict[str, Any]:
            begin_write(self.session)
            job = self._locked_job(job_id)
            self._node(compute_node_id)
            if not can(JobEvent.START, job.status):
                expected = ", ".join(sorted(sources(JobEvent.START)))
                raise ValidationFailedError(
                    f"Cannot start job {job_id}: its status is {job.status}, expected {expected}",
                    code="invalid_transition",
                )
            self._check_run(job, run_id)
            old, job.status = job.status, target(JobEvent.START)
            job.active_compute_node_id = compute_node_id
            job.start_time = now_iso()
            add_events(
                self.session,
                job.workflow_id,
                [job_event(job.id, job.name, old, job.status, compute_node_id=compute_node_id)],
            )
            self.session.commit()
            return job_wire(job)

        return self._run(work)

    def complete(
        self, job_id: int, status: str, run_id: int, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Finish a job with a result; dependents are unblocked (or canceled) immediately.

        Raises:
            NotFoundError: unknown job or compute node.
            ValidationFailedError: non-terminal status, already complete, run id mismatch.
        """
        if parse_status(status) not in targets(JobEvent.COMPLETE):
            raise ValidationFailedError(
                f"Got status '{status}' for complete_job; it must be one of "
                f"{', '.join(sorted(targets(JobEvent.COMPLETE)))}",
                code="invalid_transition",
            )

        entry = {"job_id": job_id, "status": status, "run_id": run_id, "result": result}

        def work() -> dict[str, Any]:
            done, errors = CompletionPath(self.session).complete_many([entry])
            for _, error in errors:
                raise error
            (job,) = done
            return job

        return self._run(work)

    def complete_batch(self, workflow_id: int, completions: list[dict[str, Any]]) -> dict[str, Any]:
        """Complete many jobs of a workflow in one transaction (torc's ``batch_complete_jobs``).

        Returns:
            ``{"completed": [job ids], "errors": [{"job_id", "message"}]}``.
        """
        get_workflow_or_raise(self.session, workflow_id)
        if not completions:
            return {"completed": [], "errors": []}

        def work() -> dict[str, Any]:
            done, errors = CompletionPath(self.session).complete_many(completions, workflow_id)
            return {
                "completed": [j["id"] for j in done],
                "errors": [{"job_id": job_id, "message": exc.message} for job_id, exc in errors],
            }

        return self._run(work)

    def manage_status_change(self, job_id: int, status: str, run_id: int | None) -> dict[str, Any]:
        """Set a non-finished status directly (any status may go to any non-finished one).

        Raises:
            ValidationFailedError: a finished status (use complete_job) or run id mismatch.
        """
        new = parse_status(status)
        if new not in targets(JobEvent.STATUS_CHANGE):
            raise ValidationFailedError(
                f"Cannot set completion status '{status}' via manage_status_change. "
                "Use complete_job API instead.",
                code="invalid_transition",
            )

        def work() -> dict[str, Any]:
            begin_write(self.session)
            job = self._locked_job(job_id)
            if job.status != new:
                workflow = get_workflow_or_raise(self.session, job.workflow_id)
                self._check_run(job, workflow.run_id if run_id is None else run_id)
                old = job.status
                job.status = new
                events = [job_event(job.id, job.name, old, new)]
                reopened = JobEvent.DEPENDENCY_REOPENED
                if old in FINISHED and new == target(reopened):
                    users = self.session.execute(
                        update(TorcJob)
                        .where(
                            TorcJob.status.in_(sorted(sources(reopened))),
                            TorcJob.id.in_(
                                select(TorcJobDependency.job_id).where(
                                    TorcJobDependency.depends_on_job_id == job_id
                                )
                            ),
                        )
                        .values(status=target(reopened))
                        .returning(TorcJob.id, TorcJob.name)
                        .execution_options(synchronize_session=False)
                    ).all()
                    events += [
                        job_event(u.id, u.name, FINISHED_LABEL, target(reopened)) for u in users
                    ]
                add_events(self.session, job.workflow_id, events)
                self.session.commit()
            else:
                self.session.rollback()
            return job_wire(job, load_relations(self.session, [job_id]).get(job_id))

        return self._run(work)

    def retry(self, job_id: int, run_id: int, max_retries: int) -> dict[str, Any]:
        """Put a running/failed/terminated job back to ready with ``attempt_id + 1``."""

        def work() -> dict[str, Any]:
            begin_write(self.session)
            job = self._locked_job(job_id)
            self._check_run(job, run_id)
            if not can(JobEvent.RETRY, job.status):
                raise ValidationFailedError(
                    f"Cannot retry job {job_id} in status {job.status}", code="invalid_transition"
                )
            if job.attempt_id >= max_retries:
                raise ValidationFailedError(
                    f"Job {job_id} reached max_retries {max_retries} (attempt {job.attempt_id})",
                    code="max_retries_reached",
                )
            old, job.status = job.status, target(JobEvent.RETRY)
            job.attempt_id += 1
            job.active_compute_node_id = None
            job.start_time = None
            job.origin = "retry"
            event = job_event(job.id, job.name, old, job.status, attempt_id=job.attempt_id)
            event["event_type"] = "job_retried"
            add_events(self.session, job.workflow_id, [event])
            self.session.commit()
            return job_wire(job)

        return self._run(work)

    def reset_job_status(self, workflow_id: int, *, failed_only: bool = False) -> dict[str, Any]:
        """Reset jobs to uninitialized: all, or failed ones plus everything downstream."""
        get_workflow_or_raise(self.session, workflow_id)

        def work() -> dict[str, Any]:
            begin_write(self.session)
            rows = self.session.execute(
                select(TorcJob.id, TorcJob.status).where(TorcJob.workflow_id == workflow_id)
            ).all()
            if failed_only:
                failed = [r.id for r in rows if can(JobEvent.RESET_FAILED, r.status)]
                users: dict[int, list[int]] = defaultdict(list)
                for job_id, dep in self.session.execute(
                    select(TorcJobDependency.job_id, TorcJobDependency.depends_on_job_id).where(
                        TorcJobDependency.workflow_id == workflow_id
                    )
                ):
                    users[dep].append(job_id)
                chosen = set(failed) | downstream(failed, users)
                count = len(failed)
            else:
                chosen = {r.id for r in rows if can(JobEvent.RESET, r.status)}
                count = len(chosen)
            status = {r.id: r.status for r in rows}
            chosen = {t for t in chosen if can(JobEvent.RESET, status[t])}
            bulk_status(
                self.session,
                TorcJob,
                {target(JobEvent.RESET): sorted(chosen)},
                active_compute_node_id=None,
                start_time=None,
            )
            add_events(
                self.session,
                workflow_id,
                [
                    {
                        "category": "user_action",
                        "action": "reset_job_status",
                        "failed_only": failed_only,
                        "count": count,
                    }
                ],
            )
            self.session.commit()
            body: dict[str, Any] = {
                "workflow_id": workflow_id,
                "updated_count": count,
                "status": target(JobEvent.RESET),
            }
            if failed_only:
                body["reset_type"] = "failed_only"
            return body

        return self._run(work)

    def _run(self, work: Any) -> dict[str, Any]:
        result: dict[str, Any] = run_retrying(self.session, work)
        return result


__all__ = ["JobTransitionService", "get_job_or_raise"]
