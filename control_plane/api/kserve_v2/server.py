"""Server metadata and health: ``/v2``, ``/v2/health/live``, ``/v2/health/ready``."""

from __future__ import annotations

from fastapi import Response

from control_plane.api.gated_router import GatedRouter
from control_plane.api.kserve_v2.deps import ModelServiceDep
from control_plane.schemas.kserve_v2.server import V2ServerMetadata

router = GatedRouter()

EXTENSIONS = [
    "binary_tensor_data",
    "model_repository",
    "model_repository(unload_dependents)",
    "model_configuration",
    "statistics",
    "parameters",
]


@router.get("/v2", operation_id="get_server_metadata")
def get_server_metadata() -> V2ServerMetadata:
    """Server name, version and supported protocol extensions."""
    return V2ServerMetadata(name="rayserve-platform", version="0.1.0", extensions=EXTENSIONS)


@router.get(
    "/v2/health/live",
    operation_id="get_server_live",
    response_class=Response,
    response_description="Live (empty body).",
)
def get_server_live() -> Response:
    """200 while the server process answers."""
    return Response(status_code=200)


@router.get(
    "/v2/health/ready",
    operation_id="get_server_ready",
    response_class=Response,
    response_description="Ready (empty body).",
    responses={400: {"description": "A loaded model is not ready (empty body)."}},
)
def get_server_ready(models: ModelServiceDep) -> Response:
    """200 when every loaded model is ready (strict readiness), else 400."""
    return Response(status_code=200 if models.server_ready() else 400)
