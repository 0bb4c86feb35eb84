"""The admin console at ``/console``: login, logout and pages that call the platform's REST APIs."""

from control_plane.api.console.auth import router as auth_router
from control_plane.api.console.pages import router as pages_router
from control_plane.api.gated_router import GatedRouter

router = GatedRouter(include_in_schema=False)
router.include_router(auth_router)
router.include_router(pages_router)

__all__ = ["router"]
