"""Torc workflows: CRUD, the status record (run id, cancel, archive) and completeness."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from control_plane.db.tables.torc import TorcJob, TorcWorkflow
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import (
    add_events,
    drop_none,
    envelope,
    get_workflow_or_raise,
    now_iso,
    paginate,
)
from control_plane.services.torc.packing import SORT_METHODS
from control_plane.services.torc.resource_requirements import ResourceRequirementsService
from control_plane.services.torc.state_machine import (
    ACTIVE,
    DONE_FOR_WORKFLOW,
    UNSTARTED_FOR_WORKFLOW,
    JobEvent,
    sources,
    target,
)

_FIELDS = (
    "id",
    "name",
    "user",
    "description",
    "timestamp",
    "project",
    "compute_node_expiration_buffer_seconds",
    "compute_node_wait_for_new_jobs_seconds",
    "compute_node_ignore_workflow_completion",
    "compute_node_wait_for_healthy_database_minutes",
    "compute_node_min_time_for_new_jobs_seconds",
    "jobs_sort_method",
    "resource_monitor_config",
    "slurm_defaults",
    "use_pending_failed",
)


def workflow_dict(row: TorcWorkflow) -> dict[str, Any]:
    """The wire form of a workflow."""
    body = {f: getattr(row, f) for f in _FIELDS}
    body["metadata"] = row.metadata_json
    body["status_id"] = row.id
    return drop_none(body)


def status_dict(row: TorcWorkflow) -> dict[str, Any]:
    """The wire form of a workflow's status record."""
    return {
        "id": row.id,
        "is_canceled": row.is_canceled,
        "is_archived": row.is_archived,
        "run_id": row.run_id,
        "has_detected_need_to_run_completion_script": row.needs_completion_script,
    }


class WorkflowService:
    """Workflows and their status records."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def _values(self, data: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in data.items() if k in _FIELDS and k not in ("id", "timestamp")}
        values = {k: v for k, v in values.items() if v is not None}
        if "metadata" in data and data["metadata"] is not None:
            values["metadata_json"] = data["metadata"]
        method = values.get("jobs_sort_method")
        if method is not None and method not in SORT_METHODS:
            raise ValidationFailedError(
                f"Got jobs_sort_method '{method}'; expected one of {', '.join(SORT_METHODS)}"
            )
        return values

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a workflow, its status record (run 0) and its ``default`` requirements.

        Raises:
            ValidationFailedError: no name or user.
        """
        missing = [k for k in ("name", "user") if not data.get(k)]
        if missing:
            raise ValidationFailedError(
                f"Got no {', '.join(missing)}; required to create a workflow", code="missing_field"
            )
        row = TorcWorkflow(timestamp=now_iso(), **self._values(data))
        self.session.add(row)
        self.session.flush()
        ResourceRequirementsService(self.session).create_default(row.id)
        self.session.commit()
        return workflow_dict(row)

    def get(self, workflow_id: int) -> dict[str, Any]:
        """One workflow."""
        return workflow_dict(get_workflow_or_raise(self.session, workflow_id))

    def list(
        self,
        *,
        name: str | None = None,
        user: str | None = None,
        description: str | None = None,
        is_archived: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
        sort_by: str | None = None,
        reverse_sort: bool = False,
    ) -> dict[str, Any]:
        """A page of workflows, filtered like torc's ``GET /workflows``."""
        query = select(TorcWorkflow)
        if name is not None:
            query = query.where(TorcWorkflow.name == name)
        if user is not None:
            query = query.where(TorcWorkflow.user == user)
        if description is not None:
            query = query.where(TorcWorkflow.description.like(f"%{description}%"))
        if is_archived is not None:
            query = query.where(TorcWorkflow.is_archived == is_archived)
        rows, total, _ = paginate(
            self.session,
            query,
            offset=offset,
            limit=limit,
            sort_by=sort_by,
            reverse_sort=reverse_sort,
            columns=TorcWorkflow.__table__.c,
        )
        return envelope([workflow_dict(r) for r in rows], offset, total, "workflows")

    def update(self, workflow_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Update a workflow; null fields keep their value."""
        row = get_workflow_or_raise(self.session, workflow_id)
        for key, value in self._values(data).items():
            setattr(row, key, value)
        self.session.commit()
        return workflow_dict(row)

    def delete(self, workflow_id: int) -> dict[str, Any]:
        """Delete a workflow and everything it owns."""
        row = get_workflow_or_raise(self.session, workflow_id)
        body = workflow_dict(row)
        self.session.delete(row)
        self.session.commit()
        return body

    def get_status(self, workflow_id: int) -> dict[str, Any]:
        """The status record (run id, canceled, archived)."""
        return status_dict(get_workflow_or_raise(self.session, workflow_id))

    def put_status(self, workflow_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Replace the status record (how clients bump ``run_id`` and archive)."""
        row = get_workflow_or_raise(self.session, workflow_id)
        row.run_id = int(data["run_id"])
        row.is_canceled = bool(data.get("is_canceled") or False)
        row.is_archived = bool(data.get("is_archived") or False)
        row.needs_completion_script = bool(
            data.get("has_detected_need_to_run_completion_script") or False
        )
        self.session.commit()
        return status_dict(row)

    def cancel(self, workflow_id: int) -> dict[str, Any]:
        """Cancel: pending and running jobs become ``canceled``; claims return nothing."""
        row = get_workflow_or_raise(self.session, workflow_id)
        row.is_canceled = True
        self.session.execute(
            update(TorcJob)
            .where(
                TorcJob.workflow_id == workflow_id,
                TorcJob.status.in_(sorted(sources(JobEvent.CANCEL))),
            )
            .values(status=target(JobEvent.CANCEL), active_compute_node_id=None)
        )
        add_events(self.session, workflow_id, [{"category": "workflow_canceled"}])
        self.session.commit()
        return status_dict(row)

    def reset_status(self, workflow_id: int, *, force: bool = False) -> dict[str, Any]:
        """Clear canceled/completion flags; refused while jobs run unless ``force``.

        Raises:
            ValidationFailedError: archived workflow, or active jobs without ``force``.
        """
        row = get_workflow_or_raise(self.session, workflow_id)
        if row.is_archived:
            raise ValidationFailedError(
                f"Cannot reset the status of archived workflow {workflow_id}",
                code="workflow_archived",
            )
        if not force:
            active = self.session.scalar(
                select(func.count())
                .select_from(TorcJob)
                .where(TorcJob.workflow_id == workflow_id, TorcJob.status.in_(sorted(ACTIVE)))
            )
            if active:
                raise ValidationFailedError(
                    f"Cannot reset workflow {workflow_id}: {active} job(s) are pending or running; "
                    "use force=true",
                    code="jobs_active",
                )
        row.is_canceled = False
        row.needs_completion_script = False
        add_events(
            self.session,
            workflow_id,
            [{"category": "user_action", "action": "reset_workflow_status"}],
        )
        self.session.commit()
        return status_dict(row)

    def is_complete(self, workflow_id: int) -> dict[str, Any]:
        """Complete when canceled or when every job is finished or disabled."""
        row = get_workflow_or_raise(self.session, workflow_id)
        unfinished = self.session.scalar(
            select(func.count())
            .select_from(TorcJob)
            .where(
                TorcJob.workflow_id == workflow_id,
                TorcJob.status.not_in(sorted(DONE_FOR_WORKFLOW)),
            )
        )
        return {
            "is_complete": bool(row.is_canceled or not unfinished),
            "is_canceled": row.is_canceled,
            "needs_to_run_completion_script": row.needs_completion_script,
        }

    def is_uninitialized(self, workflow_id: int) -> dict[str, Any]:
        """True when every job is uninitialized or disabled."""
        get_workflow_or_raise(self.session, workflow_id)
        other = self.session.scalar(
            select(func.count())
            .select_from(TorcJob)
            .where(
                TorcJob.workflow_id == workflow_id,
                TorcJob.status.not_in(sorted(UNSTARTED_FOR_WORKFLOW)),
            )
        )
        return {"is_uninitialized": not other}

    def job_ids(self, workflow_id: int) -> dict[str, Any]:
        """Every job id of the workflow, ascending."""
        get_workflow_or_raise(self.session, workflow_id)
        ids = list(
            self.session.scalars(
                select(TorcJob.id).where(TorcJob.workflow_id == workflow_id).order_by(TorcJob.id)
            )
        )
        return {"job_ids": ids, "count": len(ids)}
