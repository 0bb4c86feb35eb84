"""Bodies of ``/workflows`` and its sub-resources (status, initialize, completeness), torc v0.12."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from control_plane.schemas.torc.base import Page, TorcRead, TorcSchema
from control_plane.schemas.torc.status import JobStatus


class WorkflowCreate(TorcSchema):
    """``POST /workflows`` (and ``PUT /workflows/{id}``, where null keeps the old value)."""

    name: str | None = Field(
        default=None, description="Workflow name (not unique). Required on create."
    )
    user: str | None = Field(default=None, description="Owner. Required on create.")
    description: str | None = Field(default=None, description="Free text.")
    project: str | None = Field(default=None, description="Project name (torc v0.12).")
    metadata: str | dict[str, Any] | None = Field(
        default=None, description="JSON document: a string (v0.12) or an object (API 0.21)."
    )
    compute_node_expiration_buffer_seconds: int | None = Field(
        default=None, description="Runner hint."
    )
    compute_node_wait_for_new_jobs_seconds: int | None = Field(
        default=None, description="Runner idle time."
    )
    compute_node_ignore_workflow_completion: bool | None = Field(
        default=None, description="Runner hint."
    )
    compute_node_wait_for_healthy_database_minutes: int | None = Field(
        default=None, description="Runner hint."
    )
    compute_node_min_time_for_new_jobs_seconds: int | None = Field(
        default=None, description="Runner hint."
    )
    jobs_sort_method: str | None = Field(
        default=None, description="gpus_runtime_memory | gpus_memory_runtime | none."
    )
    resource_monitor_config: str | dict[str, Any] | None = Field(
        default=None, description="A JSON string (v0.12) or an object (API 0.21)."
    )
    slurm_defaults: str | dict[str, Any] | None = Field(
        default=None, description="A JSON string (v0.12) or an object (API 0.21)."
    )
    use_pending_failed: bool | None = Field(
        default=None, description="Failed jobs wait as pending_failed."
    )
    dynamic_jobs: dict[str, Any] | None = Field(
        default=None,
        description="API 0.21: ``{max_iterations}``, the spawn_jobs cap per lineage (1000).",
    )


class WorkflowStatusUpdate(TorcSchema):
    """``PUT /workflows/{id}/status``: how clients bump ``run_id`` and archive."""

    run_id: int = Field(description="The new run id.")
    is_canceled: bool = Field(default=False, description="Canceled flag.")
    is_archived: bool | None = Field(default=False, description="Archived flag (omitted = false).")
    has_detected_need_to_run_completion_script: bool | None = Field(
        default=False, description="Completion-script flag (omitted = false)."
    )


class InitializeJobsBody(TorcSchema):
    """The seed's ``initialize_jobs`` body; the real server takes query parameters."""

    reinitialize: bool | None = Field(
        default=None, description="Seed alias: true means only_uninitialized=true."
    )
    ignore_missing_data: bool | None = Field(
        default=None, description="Accepted; missing-data checks are client-side in torc."
    )


class TorcWorkflowRead(TorcRead):
    """A workflow as ``/workflows`` answers it (nulls omitted)."""

    id: int = Field(description="Workflow id.")
    name: str = Field(description="Workflow name.")
    user: str = Field(description="Owner.")
    description: str | None = Field(default=None, description="Free text.")
    timestamp: str = Field(description="When it was created (UTC, ISO 8601).")
    project: str | None = Field(default=None, description="Project name.")
    metadata: str | dict[str, Any] | None = Field(
        default=None, description="JSON document: a string for v0.12 clients, an object for 0.21."
    )
    compute_node_expiration_buffer_seconds: int = Field(description="Runner hint.")
    compute_node_wait_for_new_jobs_seconds: int = Field(
        description="How long a runner waits for a job to become ready before it stops."
    )
    compute_node_ignore_workflow_completion: bool = Field(description="Runner hint.")
    compute_node_wait_for_healthy_database_minutes: int = Field(description="Runner hint.")
    compute_node_min_time_for_new_jobs_seconds: int = Field(description="Runner hint.")
    jobs_sort_method: str = Field(
        description="gpus_runtime_memory | gpus_memory_runtime | none (runners pass it on)."
    )
    resource_monitor_config: str | dict[str, Any] | None = Field(
        default=None, description="A JSON string for v0.12 clients, an object for 0.21."
    )
    slurm_defaults: str | dict[str, Any] | None = Field(
        default=None, description="A JSON string for v0.12 clients, an object for 0.21."
    )
    use_pending_failed: bool = Field(description="Failed jobs wait as pending_failed.")
    status_id: int = Field(description="Id of the workflow's status record (= id).")
    dynamic_jobs: dict[str, Any] | None = Field(
        default=None, description="The spawn_jobs cap (``{max_iterations}``)."
    )
    run_id: int = Field(description="The current run (API 0.21 reads it here).")
    is_canceled: bool = Field(description="Canceled: claims return nothing.")
    is_archived: bool = Field(description="Archived.")


class TorcWorkflowPage(Page[TorcWorkflowRead]):
    """``GET /workflows``."""

    workflows: list[TorcWorkflowRead] = Field(description="Seed alias of items.")


class TorcWorkflowStatusRead(TorcRead):
    """``GET/PUT /workflows/{id}/status``, ``cancel`` and ``reset_status``."""

    id: int = Field(description="Workflow id.")
    is_canceled: bool = Field(description="Canceled: claims return nothing.")
    is_archived: bool = Field(description="Archived.")
    run_id: int = Field(description="The current run; start/complete must name it.")
    has_detected_need_to_run_completion_script: bool = Field(description="Completion-script flag.")


class JobStatusCounts(TorcRead):
    """How many jobs of a workflow are in each status."""

    uninitialized: int = Field(description="Jobs uninitialized.")
    blocked: int = Field(description="Jobs blocked.")
    ready: int = Field(description="Jobs ready.")
    pending: int = Field(description="Jobs pending (claimed).")
    running: int = Field(description="Jobs running.")
    completed: int = Field(description="Jobs completed.")
    failed: int = Field(description="Jobs failed.")
    canceled: int = Field(description="Jobs canceled.")
    terminated: int = Field(description="Jobs terminated.")
    disabled: int = Field(description="Jobs disabled.")
    pending_failed: int = Field(description="Jobs awaiting classification (pending_failed).")


class WorkflowStatusSummary(TorcWorkflowStatusRead):
    """``GET /workflows/{id}/status``: v0.12's status record plus API 0.21's aggregate."""

    workflow_id: int = Field(description="Workflow id.")
    workflow_name: str = Field(description="Workflow name.")
    workflow_user: str = Field(description="Owner.")
    total_jobs: int = Field(description="Jobs in the workflow.")
    jobs_by_status: JobStatusCounts = Field(description="Jobs per status.")
    total_exec_time_minutes: float = Field(description="Sum over the jobs' current results.")
    walltime_seconds: float | None = Field(
        default=None, description="First start to last completion of the current results."
    )
    active_compute_nodes: int = Field(description="Compute nodes with is_active.")
    pending_scheduled_nodes: int = Field(description="Always 0 (no scheduled compute nodes).")
    active_scheduled_nodes: int = Field(description="Always 0 (no scheduled compute nodes).")
    is_complete: bool = Field(description="As ``is_complete`` answers.")


class ArchiveWorkflowRequest(TorcSchema):
    """``POST /workflows/{id}/archive`` (API 0.21)."""

    is_archived: bool = Field(description="True archives the workflow, false unarchives it.")


class WorkflowWithStatus(TorcWorkflowRead):
    """``cancel`` and ``reset_status`` for API 0.21 clients: the workflow and its flags."""

    has_detected_need_to_run_completion_script: bool = Field(description="Completion-script flag.")


class WorkflowCompletion(TorcRead):
    """``GET /workflows/{id}/is_complete``."""

    is_complete: bool = Field(description="Canceled, or every job finished or disabled.")
    is_canceled: bool = Field(description="Canceled.")
    needs_to_run_completion_script: bool = Field(description="Completion-script flag.")


class WorkflowUninitialized(TorcRead):
    """``GET /workflows/{id}/is_uninitialized``."""

    is_uninitialized: bool = Field(description="Every job is uninitialized or disabled.")


class WorkflowJobIds(TorcRead):
    """``GET /workflows/{id}/job_ids``."""

    job_ids: list[int] = Field(description="Every job id, ascending.")
    count: int = Field(description="How many.")


class InitializeJobsRead(TorcRead):
    """``POST /workflows/{id}/initialize_jobs``."""

    message: str = Field(description="``Initialized job status``.")


class ChangedJobInputs(TorcRead):
    """``POST /workflows/{id}/process_changed_job_inputs``."""

    reinitialized_jobs: list[str] = Field(
        description="Names of the jobs whose inputs changed (reset unless dry_run), id order."
    )


class ResetJobStatusRead(TorcRead):
    """``POST /workflows/{id}/reset_job_status``."""

    workflow_id: int = Field(description="The workflow.")
    updated_count: int = Field(
        description="Jobs reset (with failed_only: the failed ones, not their downstream)."
    )
    status: JobStatus = Field(description="The status they were reset to.")
    reset_type: str | None = Field(default=None, description="``failed_only`` in that mode.")


class TaskRead(TorcRead):
    """An asynchronous operation (``TaskModel``; ``initialize_jobs?async=true`` → 202)."""

    id: int = Field(description="Task id.")
    workflow_id: int = Field(description="The workflow.")
    operation: str = Field(description="``initialize_jobs``.")
    status: str = Field(description="queued | running | succeeded | failed.")
    created_at_ms: int = Field(description="When it was accepted (ms since the epoch).")
    started_at_ms: int | None = Field(default=None, description="When it started running.")
    finished_at_ms: int | None = Field(default=None, description="When it ended.")
    error: str | None = Field(default=None, description="Why it failed.")


class ActiveTaskRead(TorcRead):
    """``GET /workflows/{id}/active_task``."""

    task: TaskRead | None = Field(description="The queued or running task, or null.")
