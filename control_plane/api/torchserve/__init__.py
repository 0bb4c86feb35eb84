"""TorchServe surface: workflow and model management, ping, prediction fallbacks."""

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torchserve.inference import router as inference_router
from control_plane.api.torchserve.models import router as models_router
from control_plane.api.torchserve.tokens import router as tokens_router
from control_plane.api.torchserve.workflows import router as workflows_router

router = GatedRouter(tags=["torchserve"])
router.include_router(workflows_router)
router.include_router(models_router)
router.include_router(inference_router)
router.include_router(tokens_router)

__all__ = ["router"]
