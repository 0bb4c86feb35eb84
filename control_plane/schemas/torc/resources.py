"""Bodies of the simple Torc resources.

``/files``, ``/user_data``, ``/resource_requirements``, ``/compute_nodes``,
``/results`` and ``/events``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from control_plane.schemas.torc.base import Page, TorcRead, TorcSchema
from control_plane.schemas.torc.jobs import ResultBody
from control_plane.schemas.torc.status import JobStatus


class FileCreate(TorcSchema):
    """``POST/PUT /files``."""

    workflow_id: int | None = Field(
        default=None, description="Owning workflow (required on create)."
    )
    name: str | None = Field(default=None, description="Logical name (required on create).")
    path: str | None = Field(default=None, description="Path, maybe relative (required on create).")
    st_mtime: float | None = Field(
        default=None, description="Modification time (client-maintained)."
    )


class UserDataCreate(TorcSchema):
    """``POST/PUT /user_data``."""

    workflow_id: int | None = Field(
        default=None, description="Owning workflow (required on create)."
    )
    name: str | None = Field(default=None, description="Name (required on create).")
    is_ephemeral: bool | None = Field(default=None, description="Only valid for one run.")
    data: Any = Field(default=None, description="Any JSON; null means missing.")


class ResourceRequirementsCreate(TorcSchema):
    """``POST/PUT /resource_requirements``."""

    workflow_id: int | None = Field(
        default=None, description="Owning workflow (required on create)."
    )
    name: str | None = Field(
        default=None, description="Name (required on create; 'default' is reserved)."
    )
    num_cpus: int | None = Field(default=None, ge=0, description="CPUs (default 1).")
    num_gpus: int | None = Field(default=None, ge=0, description="GPUs (default 0).")
    num_nodes: int | None = Field(default=None, ge=1, description="Nodes (default 1).")
    memory: str | None = Field(default=None, description="Memory like 512k, 1m, 128g (default 1m).")
    runtime: str | None = Field(
        default=None, description="ISO 8601 duration like PT8H (default P0DT1M)."
    )


class ComputeNodeCreate(TorcSchema):
    """``POST/PUT /compute_nodes`` (the seed's ``memory: "256g"`` is accepted)."""

    workflow_id: int | None = Field(
        default=None, description="Owning workflow (required on create)."
    )
    hostname: str | None = Field(default=None, description="Host name (required on create).")
    pid: int | None = Field(default=None, description="Runner process id.")
    start_time: str | None = Field(default=None, description="When the runner started.")
    duration_seconds: float | None = Field(default=None, description="How long it ran.")
    is_active: bool | None = Field(default=None, description="Still running jobs.")
    num_cpus: int | None = Field(default=None, ge=0, description="CPUs.")
    memory_gb: float | None = Field(default=None, ge=0, description="Memory in GiB.")
    memory: str | None = Field(default=None, description="Seed alias: memory string like 256g.")
    num_gpus: int | None = Field(default=None, ge=0, description="GPUs.")
    num_nodes: int | None = Field(default=None, ge=1, description="Nodes.")
    time_limit: str | None = Field(default=None, description="ISO 8601 duration.")
    scheduler_config_id: int | None = Field(default=None, description="Scheduler config.")
    compute_node_type: str | None = Field(default=None, description="local, slurm, ray...")
    scheduler: dict[str, Any] | None = Field(default=None, description="Scheduler details.")


class ResultCreate(ResultBody):
    """``POST /results``: requires the job, the workflow and a return or exit code."""

    @model_validator(mode="after")
    def _require(self) -> ResultCreate:
        missing = [k for k in ("job_id", "workflow_id") if getattr(self, k) is None]
        if self.return_code is None and self.exit_code is None:
            missing.append("return_code (or exit_code)")
        if missing:
            raise ValueError(f"Got no {', '.join(missing)}; required for a result")
        return self


class EventCreate(TorcSchema):
    """``POST/PUT /events`` (the server stamps ``timestamp``)."""

    workflow_id: int | None = Field(
        default=None, description="Owning workflow (required on create)."
    )
    timestamp: int | None = Field(default=None, description="Ignored: the server's time in ms.")
    data: dict[str, Any] | None = Field(default=None, description="The event payload.")


class FilesBulk(TorcSchema):
    """``POST /bulk_files`` (API 0.21): up to 10,000 files of one workflow, one transaction."""

    files: list[FileCreate] = Field(description="Files to create, in order.")


class UserDataBulk(TorcSchema):
    """``POST /bulk_user_data`` (API 0.21): up to 10,000 user data of one workflow."""

    user_data: list[UserDataCreate] = Field(description="User data to create, in order.")


class FileRead(TorcRead):
    """A file record (``/files``)."""

    id: int = Field(description="File id.")
    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Logical name.")
    path: str = Field(description="Path, maybe relative.")
    st_mtime: float | None = Field(default=None, description="Modification time (client-kept).")


class FilePage(Page[FileRead]):
    """``GET /files``."""

    files: list[FileRead] = Field(description="Seed alias of items.")


class UserDataRead(TorcRead):
    """A user data document (``/user_data``); ``data`` is omitted when null (missing)."""

    id: int = Field(description="User data id.")
    workflow_id: int = Field(description="Owning workflow.")
    is_ephemeral: bool = Field(description="Only valid for one run.")
    name: str = Field(description="Name.")
    data: Any = Field(default=None, description="Any JSON.")


class UserDataPage(Page[UserDataRead]):
    """``GET /user_data``."""

    user_data: list[UserDataRead] = Field(description="Seed alias of items.")


class ResourceRequirementsRead(TorcRead):
    """Resource requirements (``/resource_requirements``)."""

    id: int = Field(description="Requirements id.")
    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Name (every workflow has a 'default').")
    num_cpus: int = Field(description="CPUs.")
    num_gpus: int = Field(description="GPUs.")
    num_nodes: int = Field(description="Nodes.")
    memory: str = Field(description="Memory like 512k, 1m, 128g.")
    runtime: str = Field(description="ISO 8601 duration like PT8H.")


class ResourceRequirementsPage(Page[ResourceRequirementsRead]):
    """``GET /resource_requirements``."""

    resource_requirements: list[ResourceRequirementsRead] = Field(
        description="Seed alias of items."
    )


class ComputeNodeRead(TorcRead):
    """A compute node (``/compute_nodes``)."""

    id: int = Field(description="Compute node id.")
    workflow_id: int = Field(description="Owning workflow.")
    hostname: str = Field(description="Host name.")
    pid: int = Field(description="Runner process id.")
    start_time: str = Field(description="When the runner started.")
    duration_seconds: float | None = Field(default=None, description="How long it ran.")
    is_active: bool | None = Field(default=None, description="Still running jobs.")
    num_cpus: int = Field(description="CPUs.")
    memory_gb: float = Field(description="Memory in GiB.")
    num_gpus: int = Field(description="GPUs.")
    num_nodes: int = Field(description="Nodes.")
    time_limit: str | None = Field(default=None, description="ISO 8601 duration.")
    scheduler_config_id: int | None = Field(default=None, description="Scheduler config.")
    compute_node_type: str = Field(description="local, slurm, ray...")
    scheduler: dict[str, Any] | None = Field(default=None, description="Scheduler details.")


class ComputeNodePage(Page[ComputeNodeRead]):
    """``GET /compute_nodes``."""

    compute_nodes: list[ComputeNodeRead] = Field(description="Seed alias of items.")


class ResultRead(TorcRead):
    """A job result (``/results``), with the seed's bounded ``stdout``/``stderr``."""

    id: int = Field(description="Result id.")
    job_id: int = Field(description="The job.")
    workflow_id: int = Field(description="The workflow.")
    run_id: int = Field(description="Run it belongs to.")
    attempt_id: int = Field(description="Attempt (retries).")
    compute_node_id: int | None = Field(default=None, description="Compute node that ran it.")
    return_code: int = Field(description="Exit code (0 = success).")
    exec_time_minutes: float = Field(description="Duration in minutes.")
    completion_time: str = Field(description="When it finished.")
    status: JobStatus = Field(description="The job's final status.")
    peak_memory_bytes: int | None = Field(default=None, description="Peak RSS.")
    avg_memory_bytes: int | None = Field(default=None, description="Average RSS.")
    peak_cpu_percent: float | None = Field(default=None, description="Peak CPU %.")
    avg_cpu_percent: float | None = Field(default=None, description="Average CPU %.")
    stdout: str | None = Field(default=None, description="Captured stdout (last 64 KiB).")
    stderr: str | None = Field(default=None, description="Captured stderr (last 64 KiB).")
    job_name: str | None = Field(default=None, description="Name of the job (reads; API 0.21).")


class ResultPage(Page[ResultRead]):
    """``GET /results``."""

    results: list[ResultRead] = Field(description="Seed alias of items.")


class EventRead(TorcRead):
    """An event (``/events``): a job transition, a user action or a client's post."""

    id: int = Field(description="Event id.")
    workflow_id: int = Field(description="The workflow.")
    timestamp: int = Field(description="Server time in ms since the epoch.")
    data: dict[str, Any] = Field(description="The payload (``category``, ``event_type``...).")


class EventPage(Page[EventRead]):
    """``GET /events``."""

    events: list[EventRead] = Field(description="Seed alias of items.")


class FilesBulkRead(TorcRead):
    """``POST /bulk_files``."""

    files: list[FileRead] = Field(description="The created files, in input order.")


class UserDataBulkRead(TorcRead):
    """``POST /bulk_user_data``."""

    user_data: list[UserDataRead] = Field(description="The created user data, in input order.")


class FailureHandlerCreate(TorcSchema):
    """``POST /failure_handlers``: retry rules that runners apply to a workflow's failed jobs."""

    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Handler name.")
    rules: str | list[dict[str, Any]] = Field(
        description="JSON array (string, as torc sends it, or the array) of rules "
        "``{exit_codes: [int], match_all_exit_codes?: bool, recovery_script?: str, "
        "max_retries?: int = 3}``."
    )


class FailureHandlerRead(TorcRead):
    """A failure handler (``/failure_handlers``)."""

    id: int = Field(description="Handler id.")
    workflow_id: int = Field(description="Owning workflow.")
    name: str = Field(description="Handler name.")
    rules: str = Field(description="The rules, a JSON array as a string.")


class FailureHandlerPage(Page[FailureHandlerRead]):
    """``GET /workflows/{id}/failure_handlers``."""

    failure_handlers: list[FailureHandlerRead] = Field(description="Seed-style alias of items.")
