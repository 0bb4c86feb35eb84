"""Bodies of ``/jobs``, ``/bulk_jobs`` and the job state-machine endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, ConfigDict, Field

from control_plane.schemas.torc.base import Page, TorcRead, TorcSchema
from control_plane.schemas.torc.status import JobStatus


class JobCreate(TorcSchema):
    """``POST /jobs`` (``PUT /jobs/{id}`` with the same fields; null = unchanged)."""

    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Job name (not unique).")
    command: str = Field(description="Command the runner executes.")
    invocation_script: str | None = Field(default=None, description="Wrapper for the command.")
    status: str | None = Field(default=None, description="Ignored on create; 'disabled' on update.")
    cancel_on_blocking_job_failure: bool | None = Field(
        default=True, description="Cancel this job when a dependency fails."
    )
    supports_termination: bool | None = Field(default=False, description="SIGTERM before SIGKILL.")
    depends_on_job_ids: list[int] | None = Field(default=None, description="Explicit dependencies.")
    input_file_ids: list[int] | None = Field(default=None, description="Files the job reads.")
    output_file_ids: list[int] | None = Field(default=None, description="Files the job writes.")
    input_user_data_ids: list[int] | None = Field(default=None, description="User data read.")
    output_user_data_ids: list[int] | None = Field(default=None, description="User data written.")
    resource_requirements_id: int | None = Field(
        default=None, description="Requirements; defaults to the workflow's 'default'."
    )
    scheduler_id: int | None = Field(default=None, description="Scheduler config id.")
    failure_handler_id: int | None = Field(default=None, description="Failure handler id.")
    priority: int | None = Field(
        default=None, description="Claim priority, >= 0 (higher first; API 0.21). Default 0."
    )
    env: dict[str, Any] | None = Field(
        default=None,
        description="Environment variables for the command (names ^[A-Za-z_][A-Za-z0-9_]*$, "
        "string values; immutable after create).",
    )


class JobUpdate(JobCreate):
    """``PUT /jobs/{id}``: every field optional."""

    workflow_id: int | None = Field(default=None, description="Owning workflow (unchanged).")  # type: ignore[assignment]
    name: str | None = Field(default=None, description="New name (uninitialized jobs only).")  # type: ignore[assignment]
    command: str | None = Field(default=None, description="New command (uninitialized only).")  # type: ignore[assignment]
    cancel_on_blocking_job_failure: bool | None = Field(default=None, description="See create.")
    supports_termination: bool | None = Field(default=None, description="See create.")


class JobsBulk(TorcSchema):
    """``POST /bulk_jobs``: up to 10,000 jobs of one workflow."""

    jobs: list[JobCreate] = Field(description="Jobs in the batch, created in order.")


class ComputeNodesResources(TorcSchema):
    """Capacity a runner offers to ``claim_jobs_based_on_resources``."""

    id: int | None = Field(default=None, description="Compute node id (informational).")
    num_cpus: int = Field(ge=0, description="Free CPUs.")
    memory_gb: float = Field(ge=0, description="Free memory in GiB.")
    num_gpus: int = Field(ge=0, description="Free GPUs.")
    num_nodes: int = Field(ge=0, description="Nodes available to multi-node jobs.")
    time_limit: str | None = Field(default=None, description="ISO 8601 duration left.")
    scheduler_config_id: int | None = Field(default=None, description="Scheduler to match.")


class StatusChangeRequest(TorcSchema):
    """The seed's ``POST /jobs/{id}/manage_status_change`` body."""

    target_status: str = Field(
        validation_alias=AliasChoices("target_status", "status"), description="The new status."
    )
    run_id: int | None = Field(default=None, description="Run id; the current one when omitted.")


class ResultBody(TorcSchema):
    """A job result: torc's fields plus the seed's ``exit_code``/``stdout``/``stderr``."""

    # Captured output is stored verbatim (no whitespace stripping).
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    job_id: int | None = Field(default=None, description="The job (must match the path).")
    workflow_id: int | None = Field(default=None, description="The workflow.")
    run_id: int | None = Field(default=None, description="Run id; the current one when omitted.")
    attempt_id: int | None = Field(default=None, description="Attempt (retries).")
    compute_node_id: int | None = Field(default=None, description="Compute node that ran it.")
    return_code: int | None = Field(default=None, description="Exit code (0 = success).")
    exit_code: int | None = Field(default=None, description="Seed alias of return_code.")
    exec_time_minutes: float | None = Field(default=None, description="Duration in minutes.")
    completion_time: str | None = Field(default=None, description="When it finished.")
    status: str | None = Field(default=None, description="Final job status.")
    peak_memory_bytes: int | None = Field(default=None, description="Peak RSS.")
    avg_memory_bytes: int | None = Field(default=None, description="Average RSS.")
    peak_cpu_percent: float | None = Field(default=None, description="Peak CPU %.")
    avg_cpu_percent: float | None = Field(default=None, description="Average CPU %.")
    stdout: str | None = Field(default=None, description="Captured stdout (bounded).")
    stderr: str | None = Field(default=None, description="Captured stderr (bounded).")

    def values(self) -> dict[str, Any]:
        """The fields that were sent, with ``exit_code`` folded into ``return_code``."""
        data = self.model_dump(exclude_none=True)
        if "exit_code" in data:
            data.setdefault("return_code", data.pop("exit_code"))
            data.pop("exit_code", None)
        return data


class RunOnRayRequest(TorcSchema):
    """``POST /workflows/{id}/run_on_ray`` (extension): start the built-in Ray runner."""

    poll_interval_s: float | None = Field(
        default=None, gt=0, le=60, description="Claim poll period."
    )
    max_parallel_jobs: int | None = Field(default=None, ge=1, description="Cap on concurrent jobs.")
    log_dir: str | None = Field(default=None, description="Where full job logs go.")


class JobCompletionEntry(TorcSchema):
    """One completion of ``POST /workflows/{id}/batch_complete_jobs`` (later torc servers)."""

    job_id: int = Field(description="The job.")
    status: str = Field(description="Final status (completed, failed, terminated...).")
    run_id: int = Field(description="The workflow's current run id.")
    result: ResultBody = Field(description="The job's result.")


class BatchCompleteJobsRequest(TorcSchema):
    """``POST /workflows/{id}/batch_complete_jobs``: many completions in one transaction."""

    completions: list[JobCompletionEntry] = Field(max_length=10000, description="Completions.")


class JobRead(TorcRead):
    """A job (torc's ``job_model``) as ``/jobs`` and the state-machine endpoints answer it.

    Nulls are omitted except ``scheduler_id``; relationship arrays appear when non-empty
    (``GET /jobs/{id}``, ``GET /jobs?include_relationships=true``, creates; claims carry the
    outputs).
    """

    id: int = Field(description="Job id.")
    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Job name (not unique).")
    command: str = Field(description="Command the runner executes.")
    invocation_script: str | None = Field(default=None, description="Wrapper for the command.")
    status: JobStatus = Field(description="Where the job is in the state machine.")
    cancel_on_blocking_job_failure: bool = Field(description="Canceled when a dependency fails.")
    supports_termination: bool = Field(description="SIGTERM before SIGKILL.")
    resource_requirements_id: int | None = Field(default=None, description="Its requirements.")
    scheduler_id: int | None = Field(description="Scheduler config id (always present).")
    failure_handler_id: int | None = Field(default=None, description="Failure handler id.")
    attempt_id: int = Field(description="Attempt, 1 + retries.")
    priority: int = Field(description="Claim priority (higher first).")
    env: dict[str, str] | None = Field(default=None, description="Environment of the command.")
    origin: str | None = Field(
        default=None, description="Provenance: absent (declared), ``retry`` or ``spawn``."
    )
    compute_node_id: int | None = Field(
        default=None, description="Compute node running the current attempt (start_job)."
    )
    start_time: str | None = Field(
        default=None, description="When the current attempt started running (start_job)."
    )
    depends_on_job_ids: list[int] | None = Field(
        default=None, description="Dependencies (explicit and, after initialize, implicit)."
    )
    input_file_ids: list[int] | None = Field(default=None, description="Files the job reads.")
    output_file_ids: list[int] | None = Field(default=None, description="Files it writes.")
    input_user_data_ids: list[int] | None = Field(default=None, description="User data read.")
    output_user_data_ids: list[int] | None = Field(default=None, description="User data written.")


class JobPage(Page[JobRead]):
    """``GET /jobs``."""

    jobs: list[JobRead] = Field(description="Seed alias of items.")


class JobsBulkRead(TorcRead):
    """``POST /bulk_jobs``."""

    jobs: list[JobRead] = Field(description="The created jobs, in input order.")


class ClaimedJobs(TorcRead):
    """``claim_next_jobs`` and ``claim_jobs_based_on_resources``: jobs now ``pending``."""

    jobs: list[JobRead] = Field(description="The claimed jobs (with their output ids).")
    reason: str | None = Field(
        default=None, description="Why nothing was claimed (``Workflow is canceled``)."
    )


class BatchCompleteError(TorcRead):
    """One refused completion of ``batch_complete_jobs``."""

    job_id: int = Field(description="The job.")
    message: str = Field(description="Why (the text complete_job would answer with).")


class BatchCompleteJobsRead(TorcRead):
    """``POST /workflows/{id}/batch_complete_jobs``: valid entries are written, others listed."""

    completed: list[int] = Field(description="Ids of the jobs completed.")
    errors: list[BatchCompleteError] = Field(description="Entries that were not written.")


class SpawnJob(TorcSchema):
    """One job of ``spawn_jobs``."""

    name: str = Field(description="Job name (unique in the request; new in the workflow).")
    command: str = Field(description="Command the runner executes.")
    depends_on: list[str] | None = Field(
        default=None, description="Names of existing jobs or siblings it also waits for."
    )
    resource_requirements: str | None = Field(
        default=None, description="Name of existing resource requirements (else 'default')."
    )
    priority: int | None = Field(default=None, description="Claim priority, >= 0.")
    cancel_on_blocking_job_failure: bool | None = Field(
        default=None, description="Canceled when a dependency fails (default true)."
    )


class SpawnJobsRequest(TorcSchema):
    """``POST /jobs/{id}/spawn_jobs`` (API 0.21): add jobs blocked on the calling job."""

    jobs: list[SpawnJob] = Field(
        max_length=10000, description="Jobs to add; empty records the lineage's final state."
    )
    lineage: str | None = Field(
        default=None, description="Orchestrator lineage (default: the caller's name)."
    )
    state: Any = Field(default=None, description="Opaque JSON state of this generation.")


class SpawnJobsRead(TorcRead):
    """``spawn_jobs``' answer."""

    spawned_job_ids: list[int] = Field(
        description="Ids of the new jobs (a replay: of the existing ones), in request order."
    )
    iteration: int = Field(description="The lineage's generation after the call.")
