"""Request bodies of the simple Torc resources.

``/files``, ``/user_data``, ``/resource_requirements``, ``/compute_nodes``,
``/results`` and ``/events``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from control_plane.schemas.torc.base import TorcSchema
from control_plane.schemas.torc.jobs import ResultBody


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
