"""``/healthz`` (control plane and database liveness) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from control_plane.api.deps import GatewayDep, SessionDep
from control_plane.api.gated_router import GatedRouter
from control_plane.schemas.ops.health import HealthStatus, PlatformError, PlatformStatus
from control_plane.services.health import check_database
from control_plane.services.platform_status import platform_status

router = GatedRouter(tags=["ops"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": PlatformError, "description": "Refused (e.g. remote caller, no admin)."},
    "5XX": {"model": PlatformError, "description": "A dependency did not answer."},
}


@router.get("/healthz", operation_id="get_healthz", responses=_ERRORS)
def get_healthz(session: SessionDep) -> HealthStatus:
    """Answer 200 when the control plane and its database respond."""
    check_database(session)
    return HealthStatus(status="ok")


@router.get(
    "/metrics",
    operation_id="get_metrics",
    response_class=Response,
    response_description="Prometheus text exposition (format 0.0.4).",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition of the platform's metrics."""
    body = await run_in_threadpool(request.app.state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# platform_status builds plain dicts (a view over the gateway and the reconciler's report).
@router.get(
    "/status", operation_id="get_platform_status", response_model=PlatformStatus, responses=_ERRORS
)
async def get_platform_status(
    request: Request, session: SessionDep, gateway: GatewayDep
) -> dict[str, Any]:
    """Ray nodes and resources, each application and its deployments, the reconciler's last run."""
    reconciler = getattr(request.app.state, "reconciler", None)
    return await run_in_threadpool(platform_status, session, gateway, reconciler)
