"""TorchServe compatibility services: archive store, models, workflows."""

from control_plane.services.torchserve.models import TorchServeModelService
from control_plane.services.torchserve.workflows import TorchServeWorkflowService

__all__ = ["TorchServeModelService", "TorchServeWorkflowService"]
