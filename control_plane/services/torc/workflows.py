"""Torc workflows: CRUD, the status record (run id, cancel, archive) and completeness."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from control_plane.db.tables.torc import TorcComputeNode, TorcJob, TorcResult, TorcWorkflow
from control_plane.errors import ValidationFailedError
from control_plane.schemas.torc.generation import ApiGeneration
from control_plane.schemas.torc.status import JobStatus
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
JSON_FIELDS = ("metadata", "resource_monitor_config", "slurm_defaults")
"""JSON documents: strings in torc v0.12, objects in API 0.21 (accepted in either form)."""
_COLUMN = {"metadata": "metadata_json"}


def json_text(field: str, value: Any) -> str:
    """A JSON field as stored: a v0.12 string as sent, an object serialized.

    Raises:
        ValidationFailedError: neither a string nor an object.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise ValidationFailedError(
        f"Got {field} of type {type(value).__name__}; expected a JSON object or a string",
        code="invalid_json_field",
        field=field,
    )


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def workflow_dict(
    row: TorcWorkflow, generation: ApiGeneration = ApiGeneration.V0_12
) -> dict[str, Any]:
    """The wire form of a workflow for a client generation.

    Both get ``run_id``, ``is_canceled`` and ``is_archived`` (0.8.0 ignores them); the JSON
    fields are strings for v0.12 clients and objects for 0.21 ones (omitted when the stored
    text is not a JSON object).
    """
    body = {f: getattr(row, f) for f in _FIELDS}
    body["metadata"] = row.metadata_json
    if generation is ApiGeneration.V0_21:
        for field in JSON_FIELDS:
            body[field] = _json_object(body[field])
    body["dynamic_jobs"] = _json_object(row.dynamic_jobs)
    body["status_id"] = row.id
    body["run_id"] = row.run_id
    body["is_canceled"] = row.is_canceled
    body["is_archived"] = row.is_archived
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


def _walltime_s(results: list[Any]) -> float | None:
    """max(completion) - min(completion - exec time) over results, in seconds."""
    spans = []
    for exec_minutes, completion in results:
        try:
            end = datetime.fromisoformat(str(completion).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        spans.append((end - float(exec_minutes or 0.0) * 60.0, end))
    if not spans:
        return None
    return max(e for _, e in spans) - min(b for b, _ in spans)


class WorkflowService:
    """Workflows and their status records."""

    def __init__(self, session: Any, generation: ApiGeneration = ApiGeneration.V0_12) -> None:
        self.session = session
        self.generation = generation

    def _wire(self, row: TorcWorkflow) -> dict[str, Any]:
        return workflow_dict(row, self.generation)

    def _values(self, data: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in data.items() if k in _FIELDS and k not in ("id", "timestamp")}
        values = {k: v for k, v in values.items() if v is not None}
        for field in JSON_FIELDS:
            if data.get(field) is not None:
                values[_COLUMN.get(field, field)] = json_text(field, data[field])
        dynamic = data.get("dynamic_jobs")
        if dynamic is not None:
            cap = dynamic.get("max_iterations") if isinstance(dynamic, dict) else None
            if not isinstance(dynamic, dict) or (
                cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0)
            ):
                raise ValidationFailedError(
                    'Got dynamic_jobs that is not {"max_iterations": integer >= 0}',
                    code="invalid_dynamic_jobs",
                    field="dynamic_jobs",
                )
            values["dynamic_jobs"] = json.dumps(dynamic)
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
        return self._wire(row)

    def get(self, workflow_id: int) -> dict[str, Any]:
        """One workflow."""
        return self._wire(get_workflow_or_raise(self.session, workflow_id))

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
        return envelope([self._wire(r) for r in rows], offset, total, "workflows")

    def update(self, workflow_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Update a workflow; null fields keep their value."""
        row = get_workflow_or_raise(self.session, workflow_id)
        for key, value in self._values(data).items():
            setattr(row, key, value)
        self.session.commit()
        return self._wire(row)

    def delete(self, workflow_id: int) -> dict[str, Any]:
        """Delete a workflow and everything it owns."""
        row = get_workflow_or_raise(self.session, workflow_id)
        body = self._wire(row)
        self.session.delete(row)
        self.session.commit()
        return body

    def get_status(self, workflow_id: int) -> dict[str, Any]:
        """The status record plus API 0.21's aggregate, one body that parses for both.

        v0.12 clients read ``id, run_id, is_canceled, is_archived,
        has_detected_need_to_run_completion_script``; 0.21 clients read the job counts,
        execution time and compute nodes (``WorkflowStatusResponse``).
        """
        row = get_workflow_or_raise(self.session, workflow_id)
        counts = {s.value: 0 for s in JobStatus}
        for status, n in self.session.execute(
            select(TorcJob.status, func.count())
            .where(TorcJob.workflow_id == workflow_id)
            .group_by(TorcJob.status)
        ):
            counts[status] = int(n)
        results = self.session.execute(
            select(TorcResult.exec_time_minutes, TorcResult.completion_time).where(
                TorcResult.id.in_(
                    select(TorcJob.current_result_id).where(
                        TorcJob.workflow_id == workflow_id, TorcJob.current_result_id.is_not(None)
                    )
                )
            )
        ).all()
        active_nodes = self.session.scalar(
            select(func.count())
            .select_from(TorcComputeNode)
            .where(TorcComputeNode.workflow_id == workflow_id, TorcComputeNode.is_active.is_(True))
        )
        body = status_dict(row)
        body.update(
            {
                "workflow_id": row.id,
                "workflow_name": row.name,
                "workflow_user": row.user,
                "total_jobs": sum(counts.values()),
                "jobs_by_status": counts,
                "total_exec_time_minutes": float(sum(r.exec_time_minutes or 0.0 for r in results)),
                "active_compute_nodes": int(active_nodes or 0),
                # Scheduled compute nodes (Slurm allocations) are not implemented.
                "pending_scheduled_nodes": 0,
                "active_scheduled_nodes": 0,
                "is_complete": self.is_complete(workflow_id)["is_complete"],
            }
        )
        walltime = _walltime_s(results)
        if walltime is not None:
            body["walltime_seconds"] = walltime
        return body

    def archive(self, workflow_id: int, *, is_archived: bool) -> dict[str, Any]:
        """Set or clear the archived flag (API 0.21's ``POST /workflows/{id}/archive``)."""
        row = get_workflow_or_raise(self.session, workflow_id)
        row.is_archived = is_archived
        add_events(
            self.session,
            workflow_id,
            [{"category": "user_action", "action": "archive", "is_archived": is_archived}],
        )
        self.session.commit()
        return self._wire(row)

    def _status_body(self, row: TorcWorkflow) -> dict[str, Any]:
        """v0.12: the status record; 0.21: the workflow JSON, with the record's fields too."""
        if self.generation is ApiGeneration.V0_21:
            return {**status_dict(row), **self._wire(row)}
        return status_dict(row)

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
            .values(status=target(JobEvent.CANCEL), active_compute_node_id=None, start_time=None)
        )
        add_events(self.session, workflow_id, [{"category": "workflow_canceled"}])
        self.session.commit()
        return self._status_body(row)

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
        if self.generation is ApiGeneration.V0_21:
            # API 0.21 has no PUT .../status: reset_status starts the next run.
            row.run_id += 1
        add_events(
            self.session,
            workflow_id,
            [
                {
                    "category": "user_action",
                    "action": "reset_workflow_status",
                    "run_id": row.run_id,
                }
            ],
        )
        self.session.commit()
        return self._status_body(row)

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
