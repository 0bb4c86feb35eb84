"""``/ping``, ``/version`` and the Ray runner extension (``/workflows/{id}/run_on_ray``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from control_plane.api.torc.deps import ApiGenerationDep, RunnerServiceDep
from control_plane.api.torc.routing import torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.generation import ApiGeneration
from control_plane.schemas.torc.jobs import RunOnRayRequest
from control_plane.schemas.torc.misc import PingRead, RunnerRead, TorcVersionRead

router = torc_router("torc")
SERVER_VERSION = "0.12.0"
API_VERSION = "0.21.0"
BUILD = "ray-serve-platform"
TORC_VERSION = f"{SERVER_VERSION} ({BUILD})"


@router.get("/ping", response_model=PingRead)
async def ping() -> dict[str, str]:
    """Liveness, as torc answers it."""
    return {"status": "ok"}


@router.get("/version", response_model=str | TorcVersionRead)
async def get_version(generation: ApiGenerationDep) -> str | dict[str, str]:
    """The server version: a string for v0.12 clients, an object for API 0.21 clients."""
    if generation is ApiGeneration.V0_21:
        return {"version": SERVER_VERSION, "api_version": API_VERSION, "git_hash": BUILD}
    return TORC_VERSION


@router.post("/workflows/{workflow_id}/run_on_ray", response_model=RunnerRead)
def start_ray_runner(
    workflow_id: Id64,
    runners: RunnerServiceDep,
    body: Annotated[RunOnRayRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Extension: run the workflow's ready jobs on the Ray cluster (a Serve application)."""
    return runners.start(workflow_id, body.model_dump(exclude_none=True) if body else {})


@router.get("/workflows/{workflow_id}/run_on_ray", response_model=RunnerRead)
def get_ray_runner(workflow_id: Id64, runners: RunnerServiceDep) -> dict[str, Any]:
    """Extension: the state of the workflow's Ray runner."""
    return runners.state(workflow_id)


@router.delete("/workflows/{workflow_id}/run_on_ray", response_model=RunnerRead)
def stop_ray_runner(workflow_id: Id64, runners: RunnerServiceDep) -> dict[str, Any]:
    """Extension: stop the workflow's Ray runner (the runner calls this when done)."""
    return runners.stop(workflow_id)
