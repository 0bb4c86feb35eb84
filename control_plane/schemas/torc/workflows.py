"""Bodies of ``/workflows`` and ``/workflows/{id}/status|initialize_jobs`` (torc v0.12)."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.torc.base import TorcSchema


class WorkflowCreate(TorcSchema):
    """``POST /workflows`` (and ``PUT /workflows/{id}``, where null keeps the old value)."""

    name: str | None = Field(
        default=None, description="Workflow name (not unique). Required on create."
    )
    user: str | None = Field(default=None, description="Owner. Required on create.")
    description: str | None = Field(default=None, description="Free text.")
    project: str | None = Field(default=None, description="Project name (torc v0.12).")
    metadata: str | None = Field(default=None, description="JSON document as a string (v0.12).")
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
    resource_monitor_config: str | None = Field(default=None, description="JSON string.")
    slurm_defaults: str | None = Field(default=None, description="JSON string.")
    use_pending_failed: bool | None = Field(
        default=None, description="Failed jobs wait as pending_failed."
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
