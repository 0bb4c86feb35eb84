"""Operational endpoints: health, docs, metrics."""

from control_plane.api.ops.health import router

__all__ = ["router"]
