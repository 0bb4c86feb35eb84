"""Triton/KServe v2 HTTP protocol on the control plane (health, metadata, repository, stats)."""

from control_plane.api.gated_router import GatedRouter
from control_plane.api.kserve_v2 import models, repository, server
from control_plane.schemas.kserve_v2.common import V2Error

# Every v2 error body is Triton's ``{"error": message}`` (routes name their empty-body 400s).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    "4XX": {"model": V2Error, "description": "Triton's error body."},
    "5XX": {"model": V2Error, "description": "Triton's error body."},
}

router = GatedRouter(tags=["kserve-v2"], responses=ERROR_RESPONSES)
router.include_router(server.router)
router.include_router(repository.router)
router.include_router(models.router)

__all__ = ["router"]
