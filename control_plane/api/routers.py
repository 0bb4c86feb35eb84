"""Mounts every surface's routers on the app, in a fixed order."""

from __future__ import annotations

from fastapi import FastAPI

from control_plane.api.console import router as console_router
from control_plane.api.kserve_v2 import router as kserve_v2_router
from control_plane.api.mlserve import router as mlserve_router
from control_plane.api.ops import router as ops_router
from control_plane.api.torc import router as torc_router
from control_plane.api.torchserve import router as torchserve_router

SURFACES = (
    ops_router,
    torc_router,
    torchserve_router,
    kserve_v2_router,
    mlserve_router,
    console_router,
)


def include_routers(app: FastAPI) -> None:
    """Attach each surface's router, then fix their route trees (see ``GatedRouter.freeze``)."""
    for router in SURFACES:
        app.include_router(router)
    for router in SURFACES:
        router.freeze()
