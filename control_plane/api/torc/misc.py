"""``/ping``, ``/version`` and the Ray runner extension (``/workflows/{id}/run_on_ray``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.schemas.torc.jobs import RunOnRayRequest
from control_plane.services.torc import RunnerService

router = APIRouter(tags=["torc"])
TORC_VERSION = "0.12.0 (ray-serve-platform)"


@router.get("/ping")
def ping() -> dict[str, str]:
    """Liveness, as torc answers it."""
    return {"status": "ok"}


@router.get("/version")
def get_version() -> str:
    """The torc server version this API implements."""
    return TORC_VERSION


@router.post("/workflows/{workflow_id}/run_on_ray")
def start_ray_runner(
    workflow_id: int,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    body: Annotated[RunOnRayRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Extension: run the workflow's ready jobs on the Ray cluster (a Serve application)."""
    options = body.model_dump(exclude_none=True) if body else {}
    return RunnerService(session, gateway, settings).start(workflow_id, options)


@router.get("/workflows/{workflow_id}/run_on_ray")
def get_ray_runner(
    workflow_id: int, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> dict[str, Any]:
    """Extension: the state of the workflow's Ray runner."""
    return RunnerService(session, gateway, settings).state(workflow_id)


@router.delete("/workflows/{workflow_id}/run_on_ray")
def stop_ray_runner(
    workflow_id: int, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> dict[str, Any]:
    """Extension: stop the workflow's Ray runner (the runner calls this when done)."""
    return RunnerService(session, gateway, settings).stop(workflow_id)
