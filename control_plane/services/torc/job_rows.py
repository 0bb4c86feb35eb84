"""The one job row mapper: a job's columns by name, from the ORM or raw SQL, and its wire form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
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
    priority: int
    env: str | None
    origin: str | None
    active_compute_node_id: int | None
    start_time: str | None

    @classmethod
    def of(cls, row: Any) -> JobRow:
        """From a ``TorcJob``, a SQL row selecting ``JOB_COLUMNS`` or a mapping, by column name."""
        if isinstance(row, Mapping):
            row = SimpleNamespace(**row)
        # Positional for speed (lists map 10,000 rows); test_torc_state_machine checks the order.
        return cls(
            row.id,
            row.workflow_id,
            row.name,
            row.command,
            row.invocation_script,
            _STATUSES[row.status],
            # Raw SQL on SQLite reads booleans as 0/1.
            bool(row.cancel_on_blocking_job_failure),
            bool(row.supports_termination),
            row.resource_requirements_id,
            row.scheduler_id,
            row.failure_handler_id,
            row.attempt_id,
            row.priority or 0,
            row.env,
            row.origin,
            row.active_compute_node_id,
            row.start_time,
        )

    def wire(self, relations: Mapping[str, list[int]] | None = None) -> dict[str, Any]:
        """Torc's ``job_model``.

        Nulls are omitted (torc's serde) except ``scheduler_id``, which torc always
        serializes; relationship arrays appear when given and non-empty, sorted. The active
        compute node is ``compute_node_id`` on the wire (API 0.21) and ``env`` an object.
        """
        body: dict[str, Any] = {
            k: v
            for k, v in zip(self._fields, self, strict=True)
            if v is not None or k == "scheduler_id"
        }
        body["status"] = self.status.value
        node = body.pop("active_compute_node_id", None)
        if node is not None:
            body["compute_node_id"] = node
        if self.env is not None:
            body["env"] = json.loads(self.env)
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
