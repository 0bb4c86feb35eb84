"""Torc results: return code, timing and (bounded) stdout/stderr of each job run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from control_plane.db.tables.torc import TorcComputeNode, TorcJob, TorcResult
from control_plane.errors import AlreadyExistsError, NotFoundError, ValidationFailedError
from control_plane.services.torc.common import get_workflow_or_raise, now_iso
from control_plane.services.torc.crud import TorcCrud
from control_plane.services.torc.state_machine import JobEvent, JobStatus, parse_status, targets

MAX_OUTPUT_CHARS = 64 * 1024


def _tail(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_OUTPUT_CHARS:
        return text
    return "...[truncated]...\n" + text[-MAX_OUTPUT_CHARS:]


class ResultService(TorcCrud):
    """CRUD for ``/results``; accepts the seed's ``exit_code``/``stdout``/``stderr``."""

    table = TorcResult
    label = "Result"
    list_key = "results"
    required = ("workflow_id", "job_id")
    fields = (
        "id",
        "job_id",
        "workflow_id",
        "run_id",
        "attempt_id",
        "compute_node_id",
        "return_code",
        "exec_time_minutes",
        "completion_time",
        "status",
        "peak_memory_bytes",
        "avg_memory_bytes",
        "peak_cpu_percent",
        "avg_cpu_percent",
        "stdout",
        "stderr",
    )

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """Fill defaults (current run, status from the return code) and check references."""
        values = {k: v for k, v in data.items() if v is not None}
        if "exit_code" in values:
            values.setdefault("return_code", values.pop("exit_code"))
        values.pop("exit_code", None)
        for key in ("stdout", "stderr"):
            if key in values:
                values[key] = _tail(values[key])
        if row is None:
            job = self.session.get(TorcJob, values.get("job_id"))
            if job is None:
                raise NotFoundError(
                    f"Job not found with ID: {values.get('job_id')}", code="job_not_found"
                )
            if job.workflow_id != values["workflow_id"]:
                raise ValidationFailedError(
                    f"Job {job.id} belongs to workflow {job.workflow_id}, "
                    f"not {values['workflow_id']}"
                )
            workflow = get_workflow_or_raise(self.session, values["workflow_id"])
            values.setdefault("return_code", 0)
            values.setdefault("run_id", workflow.run_id)
            values.setdefault("attempt_id", job.attempt_id)
            values.setdefault("exec_time_minutes", 0.0)
            values.setdefault("completion_time", now_iso())
            values.setdefault(
                "status",
                JobStatus.COMPLETED if values["return_code"] == 0 else JobStatus.FAILED,
            )
            duplicate = self.session.scalar(
                select(TorcResult.id).where(
                    TorcResult.job_id == job.id,
                    TorcResult.run_id == values["run_id"],
                    TorcResult.attempt_id == values["attempt_id"],
                )
            )
            if duplicate is not None:
                raise AlreadyExistsError(
                    f"A result of job {job.id} for run {values['run_id']} attempt "
                    f"{values['attempt_id']} already exists (result {duplicate})",
                    code="result_exists",
                )
        # A result's status is one complete_job accepts.
        if "status" in values and parse_status(values["status"]) not in targets(JobEvent.COMPLETE):
            raise ValidationFailedError(
                f"Got result status '{values['status']}'; it must be one of "
                f"{', '.join(sorted(targets(JobEvent.COMPLETE)))}"
            )
        node_id = values.get("compute_node_id")
        if node_id is not None and self.session.get(TorcComputeNode, node_id) is None:
            raise NotFoundError(
                f"Compute node not found with ID: {node_id}", code="compute_node_not_found"
            )
        return values

    def to_dict(self, row: Any) -> dict[str, Any]:
        """The wire form, with the job's name (API 0.21 reads ``job_name``)."""
        body = super().to_dict(row)
        names: dict[int, str] = getattr(self, "_names", {})
        name = names.get(row.job_id)
        if name is None:
            job = self.session.get(TorcJob, row.job_id)
            name = job.name if job is not None else None
        if name is not None:
            body["job_name"] = name
        return body

    def after_create(self, row: Any, data: dict[str, Any]) -> None:  # noqa: ARG002 - hook
        """A posted result becomes the job's current result when it has none."""
        job = self.session.get(TorcJob, row.job_id)
        if job is not None and job.current_result_id is None:
            job.current_result_id = row.id

    def list_results(
        self,
        workflow_id: int,
        *,
        job_id: int | None = None,
        run_id: int | None = None,
        return_code: int | None = None,
        status: str | None = None,
        compute_node_id: int | None = None,
        all_runs: bool = False,
        **page: Any,
    ) -> dict[str, Any]:
        """Results of a workflow: the jobs' current results, or every run with ``all_runs``."""
        where: list[ColumnElement[bool]] = []
        if not all_runs:
            where.append(
                TorcResult.id.in_(
                    select(TorcJob.current_result_id).where(
                        TorcJob.workflow_id == workflow_id, TorcJob.current_result_id.is_not(None)
                    )
                )
            )
        for column, value in (
            (TorcResult.job_id, job_id),
            (TorcResult.run_id, run_id),
            (TorcResult.return_code, return_code),
            (TorcResult.status, status),
            (TorcResult.compute_node_id, compute_node_id),
        ):
            if value is not None:
                where.append(column == value)
        # One read of the job names instead of one per result.
        self._names = dict(
            self.session.execute(
                select(TorcJob.id, TorcJob.name).where(TorcJob.workflow_id == workflow_id)
            ).all()
        )
        try:
            return self.list(workflow_id, where=where, **page)
        finally:
            self._names = {}
