"""Dependencies of the TorchServe routes: the services, built once per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.api.mlserve.deps import UserServiceDep, lower_headers
from control_plane.errors import DomainError
from control_plane.services.console.sessions import SESSION_COOKIE
from control_plane.services.mlserve.users import UserService
from control_plane.services.torchserve.models import TorchServeModelService
from control_plane.services.torchserve.tokens import TorchServeTokenService
from control_plane.services.torchserve.workflows import TorchServeWorkflowService


async def get_model_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TorchServeModelService:
    """The TorchServe model service for this request."""
    return TorchServeModelService(session, gateway, settings)


async def get_workflow_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TorchServeWorkflowService:
    """The TorchServe workflow service for this request."""
    return TorchServeWorkflowService(session, gateway, settings)


async def get_token_service(session: SessionDep, settings: SettingsDep) -> TorchServeTokenService:
    """The TorchServe token-key service for this request."""
    return TorchServeTokenService(session, settings)


TokenServiceDep = Annotated[TorchServeTokenService, Depends(get_token_service)]
AuthorizationHeader = Annotated[str | None, Header(alias="authorization", include_in_schema=False)]


async def require_management_key(
    request: Request,
    service: TokenServiceDep,
    users: UserServiceDep,
    authorization: AuthorizationHeader = None,
) -> None:
    """Management endpoints: the management key when token authorization is on.

    The operator console's admin session (its cookie plus the session's CSRF token) stands for
    the management key, so the console's TorchServe pages keep working with token auth on.
    With token authorization off (the default) nothing is read, so no worker thread is taken.
    """
    if not service.enabled:
        return
    await run_in_threadpool(_check_management_key, request, service, users, authorization)


def _check_management_key(
    request: Request,
    service: TorchServeTokenService,
    users: UserService,
    authorization: str | None,
) -> None:
    if authorization is None and SESSION_COOKIE in request.headers.get("cookie", ""):
        try:
            users.require_admin(lower_headers(request))
        except DomainError:
            pass  # not a valid admin session: TorchServe's invalid-key answer below
        else:
            return
    service.authorize("management", authorization)


async def require_inference_key(
    service: TokenServiceDep, authorization: AuthorizationHeader = None
) -> None:
    """Inference endpoints (ping, prediction fallbacks): the inference key when it is on."""
    if service.enabled:
        await run_in_threadpool(service.authorize, "inference", authorization)


ModelServiceDep = Annotated[TorchServeModelService, Depends(get_model_service)]
WorkflowServiceDep = Annotated[TorchServeWorkflowService, Depends(get_workflow_service)]
