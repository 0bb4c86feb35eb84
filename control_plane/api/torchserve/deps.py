"""Dependencies of the TorchServe routes: the services, built once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.services.torchserve.models import TorchServeModelService
from control_plane.services.torchserve.workflows import WorkflowService


def get_model_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TorchServeModelService:
    """The TorchServe model service for this request."""
    return TorchServeModelService(session, gateway, settings)


def get_workflow_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> WorkflowService:
    """The workflow service for this request."""
    return WorkflowService(session, gateway, settings)


ModelServiceDep = Annotated[TorchServeModelService, Depends(get_model_service)]
WorkflowServiceDep = Annotated[WorkflowService, Depends(get_workflow_service)]
