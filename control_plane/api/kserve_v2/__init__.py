"""Triton/KServe v2 HTTP protocol on the control plane (health, metadata, repository, stats)."""

from fastapi import APIRouter

from control_plane.api.kserve_v2 import models, repository, server

router = APIRouter(tags=["kserve-v2"])
router.include_router(server.router)
router.include_router(repository.router)
router.include_router(models.router)

__all__ = ["router"]
