"""Mounts every surface's routers on the app, in a fixed order."""

from __future__ import annotations

from fastapi import FastAPI

from control_plane.api.ops import router as ops_router


def include_routers(app: FastAPI) -> None:
    """Attach each surface's router."""
    app.include_router(ops_router)
