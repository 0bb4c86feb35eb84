"""MLServe admin API (``/api``): tritons, models, versions, users, apps."""

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve import apps, models, tritons, users, versions
from control_plane.api.mlserve.envelopes import ERROR_RESPONSES

router = GatedRouter(prefix="/api", responses=ERROR_RESPONSES)
for _module in (tritons, models, versions, users, apps):
    router.include_router(_module.router)

__all__ = ["router"]
