"""Dependencies of the TorchServe routes: the services, built once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.services.torchserve.models import TorchServeModelService
from control_plane.services.torchserve.workflows import TorchServeWorkflowService


def get_model_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TorchServeModelService:
    """The TorchServe model service for this request."""
    return TorchServeModelService(session, gateway, settings)


def get_workflow_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TorchServeWorkflowService:
    """The TorchServe workflow service for this request."""
    return TorchServeWorkflowService(session, gateway, settings)


ModelServiceDep = Annotated[TorchServeModelService, Depends(get_model_service)]
WorkflowServiceDep = Annotated[TorchServeWorkflowService, Depends(get_workflow_service)]
