"""The one job row mapper: a job's columns by name, from the ORM or raw SQL, and its wire form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from control_plane.schemas.torc.status import JobStatus


class JobRow(NamedTuple):
    """The columns of ``torc_jobs`` that torc's ``job_model`` shows."""

    id: int
    workflow_id: int
    name: str
    command: str
    invocation_script: str | None
    status: JobStatus
    cancel_on_blocking_job_failure: bool
    supports_termination: bool
    resource_requirements_id: int | None
    scheduler_id: int | None
    failure_handler_id: int | None
    attempt_id: int

    @classmethod
    def of(cls, row: Any) -> JobRow:
        """From a ``TorcJob``, a SQL row selecting ``JOB_COLUMNS`` or a mapping, by column name."""
        mapping = row if isinstance(row, Mapping) else getattr(row, "_mapping", None)
        get = mapping.__getitem__ if mapping is not None else row.__getattribute__
        return cls(
            id=get("id"),
            workflow_id=get("workflow_id"),
            name=get("name"),
            command=get("command"),
            invocation_script=get("invocation_script"),
            status=_STATUSES[get("status")],
            # Raw SQL on SQLite reads booleans as 0/1.
            cancel_on_blocking_job_failure=bool(get("cancel_on_blocking_job_failure")),
            supports_termination=bool(get("supports_termination")),
            resource_requirements_id=get("resource_requirements_id"),
            scheduler_id=get("scheduler_id"),
            failure_handler_id=get("failure_handler_id"),
            attempt_id=get("attempt_id"),
        )

    def wire(self, relations: Mapping[str, list[int]] | None = None) -> dict[str, Any]:
        """Torc's ``job_model``.

        Nulls are omitted (torc's serde) except ``scheduler_id``, which torc always
        serializes; relationship arrays appear when given and non-empty, sorted.
        """
        body: dict[str, Any] = {
            k: v
            for k, v in zip(self._fields, self, strict=True)
            if v is not None or k == "scheduler_id"
        }
        for key, values in (relations or {}).items():
            if values:
                body[key] = sorted(values)
        return body


_STATUSES: dict[str, JobStatus] = {s.value: s for s in JobStatus}
JOB_FIELDS: tuple[str, ...] = JobRow._fields
JOB_COLUMNS = ", ".join(JOB_FIELDS)


def job_columns(table: str) -> str:
    """``JOB_COLUMNS`` qualified with a table name or alias (for joins and ``RETURNING``)."""
    return ", ".join(f"{table}.{c}" for c in JOB_FIELDS)


def job_wire(row: Any, relations: Mapping[str, list[int]] | None = None) -> dict[str, Any]:
    """The wire form of a job row (ORM object or SQL row)."""
    return JobRow.of(row).wire(relations)
