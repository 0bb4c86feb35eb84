"""Torc jobs: create (one or in bulk), read, list with filters, update rules, delete."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcJob,
    TorcJobDependency,
    TorcJobFile,
    TorcResourceRequirements,
)
from control_plane.errors import NotFoundError, ValidationFailedError
from control_plane.services.torc.common import (
    MAX_LIMIT,
    envelope,
    get_workflow_or_raise,
    paginate,
)
from control_plane.services.torc.failure_handlers import check_failure_handlers
from control_plane.services.torc.job_rows import JobRow, job_wire
from control_plane.services.torc.relations import (
    REL_FIELDS,
    check_references,
    insert_relations,
    load_relations,
)
from control_plane.services.torc.state_machine import (
    INITIAL,
    JobEvent,
    parse_status,
    source,
    target,
    targets,
)

_ALWAYS_MUTABLE = (
    "scheduler_id",
    "resource_requirements_id",
    "invocation_script",
    "cancel_on_blocking_job_failure",
    "supports_termination",
    "failure_handler_id",
    "priority",
)
_MUTABLE_WHILE_UNINITIALIZED = ("name", "command")
_IMMUTABLE_RELS = REL_FIELDS[1:]
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_priority(value: Any) -> int:
    """A job priority: an integer >= 0 (higher is claimed first).

    Raises:
        ValidationFailedError: negative or not an integer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailedError(
            f"priority must be >= 0, got {value}", code="invalid_priority", field="priority"
        )
    return value


def env_text(env: Any) -> str | None:
    """A job's ``env`` map as stored (JSON text), checked like torc checks it.

    Raises:
        ValidationFailedError: not a map of names (``^[A-Za-z_][A-Za-z0-9_]*$``) to strings.
    """
    if env is None:
        return None
    if not isinstance(env, dict):
        raise ValidationFailedError(
            "Got env that is not an object", code="invalid_env", field="env"
        )
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise ValidationFailedError(
                f"Got env key '{key}'; names match ^[A-Za-z_][A-Za-z0-9_]*$",
                code="invalid_env",
                field="env",
            )
        if not isinstance(value, str):
            raise ValidationFailedError(
                f"Got env value of {key} that is not a string", code="invalid_env", field="env"
            )
    return json.dumps(env, sort_keys=True) if env else None


def get_job_or_raise(session: Session, job_id: int) -> TorcJob:
    """The job row.

    Raises:
        NotFoundError: unknown id.
    """
    job = session.get(TorcJob, job_id)
    if job is None:
        raise NotFoundError(f"Job not found with ID: {job_id}", code="job_not_found")
    return job


class JobService:
    """Job CRUD; status transitions live in ``JobStateService``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _default_rr(self, workflow_id: int) -> int | None:
        return self.session.scalar(
            select(TorcResourceRequirements.id)
            .where(
                TorcResourceRequirements.workflow_id == workflow_id,
                TorcResourceRequirements.name == "default",
            )
            .limit(1)
        )

    def create_many(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create jobs of one workflow in one transaction (bulk SQL), in input order.

        Raises:
            ValidationFailedError: mixed workflows, too many jobs, unknown references.
            NotFoundError: unknown workflow.
        """
        if not jobs:
            return []
        if len(jobs) > MAX_LIMIT:
            raise ValidationFailedError(f"Got {len(jobs)} jobs; at most {MAX_LIMIT} per request")
        workflow_ids = {j["workflow_id"] for j in jobs}
        if len(workflow_ids) != 1:
            raise ValidationFailedError(
                f"Got jobs of workflows {sorted(workflow_ids)}; a batch must share one workflow_id"
            )
        workflow_id = workflow_ids.pop()
        get_workflow_or_raise(self.session, workflow_id)
        check_references(self.session, workflow_id, jobs)
        check_failure_handlers(self.session, workflow_id, jobs)
        default_rr = self._default_rr(workflow_id)
        values = [
            {
                "workflow_id": workflow_id,
                "name": j["name"],
                "command": j["command"],
                "invocation_script": j.get("invocation_script"),
                "status": INITIAL,
                "cancel_on_blocking_job_failure": j.get("cancel_on_blocking_job_failure", True)
                is not False,
                "supports_termination": bool(j.get("supports_termination") or False),
                "resource_requirements_id": j.get("resource_requirements_id") or default_rr,
                "scheduler_id": j.get("scheduler_id"),
                "failure_handler_id": j.get("failure_handler_id"),
                "attempt_id": 1,
                "priority": check_priority(j.get("priority") or 0),
                "env": env_text(j.get("env")),
                "origin": j.get("origin"),
                "active_compute_node_id": None,
                "start_time": None,
            }
            for j in jobs
        ]
        result = self.session.execute(
            insert(TorcJob).returning(TorcJob.id, sort_by_parameter_order=True), values
        )
        ids = [row.id for row in result]
        insert_relations(self.session, workflow_id, list(zip(ids, jobs, strict=True)))
        self.session.commit()
        return [
            JobRow.of({"id": job_id, **value}).wire(
                {key: sorted(set(job[key])) for key in REL_FIELDS if job.get(key)}
            )
            for job_id, value, job in zip(ids, values, jobs, strict=True)
        ]

    def create(self, job: dict[str, Any]) -> dict[str, Any]:
        """Create one job."""
        return self.create_many([job])[0]

    def get(self, job_id: int) -> dict[str, Any]:
        """One job with its relationships."""
        job = get_job_or_raise(self.session, job_id)
        return job_wire(job, load_relations(self.session, [job_id]).get(job_id))

    def list(
        self,
        workflow_id: int,
        *,
        status: str | None = None,
        needs_file_id: int | None = None,
        upstream_job_id: int | None = None,
        active_compute_node_id: int | None = None,
        name: str | None = None,
        command: str | None = None,
        origin_is_set: bool | None = None,
        include_relationships: bool = False,
        offset: int = 0,
        limit: int | None = None,
        sort_by: str | None = None,
        reverse_sort: bool = False,
    ) -> dict[str, Any]:
        """A page of a workflow's jobs, filtered like torc's ``GET /jobs``."""
        get_workflow_or_raise(self.session, workflow_id)
        query = select(TorcJob).where(TorcJob.workflow_id == workflow_id)
        if status is not None:
            query = query.where(TorcJob.status == parse_status(status))
        if needs_file_id is not None:
            query = query.where(
                TorcJob.id.in_(
                    select(TorcJobFile.job_id).where(
                        TorcJobFile.file_id == needs_file_id, TorcJobFile.direction == "in"
                    )
                )
            )
        if upstream_job_id is not None:
            query = query.where(
                TorcJob.id.in_(
                    select(TorcJobDependency.job_id).where(
                        TorcJobDependency.depends_on_job_id == upstream_job_id
                    )
                )
            )
        if active_compute_node_id is not None:
            query = query.where(TorcJob.active_compute_node_id == active_compute_node_id)
        # API 0.21: substring matches, ASCII-case-insensitive; origin set or not.
        for column, text in ((TorcJob.name, name), (TorcJob.command, command)):
            if text is not None:
                query = query.where(func.lower(column).contains(text.lower(), autoescape=True))
        if origin_is_set is not None:
            query = query.where(
                TorcJob.origin.is_not(None) if origin_is_set else TorcJob.origin.is_(None)
            )
        rows, total, _ = paginate(
            self.session,
            query,
            offset=offset,
            limit=limit,
            sort_by=sort_by,
            reverse_sort=reverse_sort,
            columns=TorcJob.__table__.c,
        )
        rels = load_relations(self.session, [r.id for r in rows]) if include_relationships else {}
        return envelope([job_wire(r, rels.get(r.id)) for r in rows], offset, total, "jobs")

    def update(self, job_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Apply torc's job update rules (§4.9 of the reference).

        Raises:
            ValidationFailedError: a field that may not change in the job's status.
        """
        job = get_job_or_raise(self.session, job_id)
        rels = load_relations(self.session, [job_id]).get(job_id, {})
        blocked: list[str] = []
        for key in _IMMUTABLE_RELS:
            if data.get(key) is not None and sorted(set(data[key])) != sorted(rels.get(key, [])):
                blocked.append(key)
        changed = [
            k
            for k in _MUTABLE_WHILE_UNINITIALIZED
            if data.get(k) is not None and data[k] != getattr(job, k)
        ]
        new_status = data.get("status")
        if new_status is not None and new_status != job.status:
            if parse_status(new_status) not in targets(JobEvent.DISABLE):
                raise ValidationFailedError(
                    f"Cannot change job {job_id} status from {job.status} to {new_status} with an "
                    f"update; only '{target(JobEvent.DISABLE)}' is allowed (use "
                    "manage_status_change)",
                    code="invalid_transition",
                )
            changed.append("status")
        deps = data.get("depends_on_job_ids")
        deps_changed = deps is not None and sorted(set(deps)) != sorted(
            rels.get("depends_on_job_ids", [])
        )
        if deps_changed:
            changed.append("depends_on_job_ids")
        if "priority" in data and data["priority"] is not None:
            check_priority(data["priority"])
        if data.get("env") is not None and env_text(data["env"]) != job.env:
            blocked.append("env")
        # Name, command, status and dependencies change only before the job is initialized
        # (the only status a job may be disabled from).
        if job.status != source(JobEvent.DISABLE) and changed:
            blocked.extend(changed)
        if blocked:
            raise ValidationFailedError(
                f"Cannot change {', '.join(blocked)} of job {job_id} in status {job.status}",
                code="job_update_forbidden",
                fields=blocked,
            )
        check_references(self.session, job.workflow_id, [data])
        check_failure_handlers(self.session, job.workflow_id, [data])
        for key in (*_ALWAYS_MUTABLE, *_MUTABLE_WHILE_UNINITIALIZED):
            if data.get(key) is not None:
                setattr(job, key, data[key])
        if "status" in changed:
            job.status = target(JobEvent.DISABLE)
        if deps_changed:
            self.session.execute(
                delete(TorcJobDependency).where(TorcJobDependency.job_id == job_id)
            )
            insert_relations(
                self.session, job.workflow_id, [(job_id, {"depends_on_job_ids": deps})]
            )
        self.session.commit()
        return self.get(job_id)

    def delete(self, job_id: int) -> dict[str, Any]:
        """Delete a job (and its links and results)."""
        body = self.get(job_id)
        self.session.delete(get_job_or_raise(self.session, job_id))
        self.session.commit()
        return body

    def delete_all(self, workflow_id: int) -> int:
        """Delete every job of a workflow; returns how many."""
        get_workflow_or_raise(self.session, workflow_id)
        result = self.session.execute(delete(TorcJob).where(TorcJob.workflow_id == workflow_id))
        self.session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
