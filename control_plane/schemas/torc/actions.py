"""Bodies of ``/workflows/{id}/actions`` (workflow actions)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from control_plane.schemas.torc.base import TorcRead, TorcSchema


class WorkflowActionCreate(TorcSchema):
    """``POST /workflows/{id}/actions``."""

    workflow_id: int | None = Field(default=None, description="Ignored: the path names it.")
    trigger_type: str = Field(
        description="on_workflow_start | on_workflow_complete | on_worker_start | "
        "on_worker_complete | on_jobs_ready | on_jobs_complete."
    )
    action_type: str = Field(
        description="run_commands (run by the Ray runner), schedule_nodes (stored), or any."
    )
    action_config: Any = Field(
        default=None,
        description='run_commands: exactly {"commands": [strings]}; schedule_nodes: keys of '
        "scheduler_id, scheduler_type, num_allocations, start_one_worker_per_node, "
        "max_parallel_jobs.",
    )
    job_ids: list[int] | None = Field(
        default=None, description="Gating jobs of on_jobs_ready / on_jobs_complete."
    )
    persistent: bool | None = Field(
        default=None, description="Claimable by every worker, not just the first."
    )
    is_recovery: bool | None = Field(
        default=None, description="Deleted by the next initialize_jobs."
    )


class WorkflowActionRead(TorcRead):
    """A workflow action (``WorkflowActionModel``)."""

    id: int = Field(description="Action id.")
    workflow_id: int = Field(description="Owning workflow.")
    trigger_type: str = Field(description="What fires it.")
    action_type: str = Field(description="What it does.")
    action_config: Any = Field(default=None, description="Its configuration.")
    job_ids: list[int] | None = Field(default=None, description="Gating jobs.")
    trigger_count: int = Field(description="Triggers seen.")
    required_triggers: int = Field(description="Triggers needed (number of gating jobs, or 1).")
    executed: bool = Field(description="Claimed (non-persistent actions).")
    executed_at: str | None = Field(default=None, description="When it was last claimed.")
    executed_by: int | None = Field(default=None, description="Compute node that claimed it.")
    persistent: bool = Field(description="Claimable by every worker.")
    is_recovery: bool = Field(description="Deleted by the next initialize_jobs.")


class ClaimActionRequest(TorcSchema):
    """``POST /workflows/{id}/actions/{action_id}/claim``."""

    compute_node_id: int | None = Field(default=None, description="The claiming worker.")


class ClaimActionRead(TorcRead):
    """A successful claim (a refused one is a 409)."""

    claimed: bool = Field(description="True.")
    success: bool = Field(description="True (torc-client 0.35's field).")
    action_id: int = Field(description="The action.")
