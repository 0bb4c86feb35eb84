"""Bodies of ``/ping`` and the Ray runner extension (``/workflows/{id}/run_on_ray``)."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.torc.base import TorcRead


class PingRead(TorcRead):
    """``GET /ping``."""

    status: str = Field(description="``ok``.")


class TorcVersionRead(TorcRead):
    """``GET /version`` for API 0.21 clients (v0.12 clients get a JSON string)."""

    version: str = Field(description="The torc server version this API implements.")
    api_version: str = Field(description="The HTTP API version (0.21.0).")
    git_hash: str | None = Field(default=None, description="Build identifier.")


class RunnerRead(TorcRead):
    """``POST/GET/DELETE /workflows/{id}/run_on_ray``: the workflow's Ray runner application."""

    workflow_id: int = Field(description="The workflow.")
    app_name: str = Field(description="Serve application name (``p-jobs-<id>``).")
    recorded: bool = Field(description="Whether the platform wants the runner running.")
    status: str = Field(
        description="Serve application status (RUNNING, DEPLOYING, ..., NOT_STARTED, DELETING)."
    )
    message: str | None = Field(default=None, description="What Serve reports (GET, POST).")
    log_dir: str | None = Field(
        default=None, description="Where job logs go (GET, POST; null when not recorded)."
    )
