"""TorchServe Model Management API: ``/models``."""

from __future__ import annotations

from fastapi import Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torchserve.deps import ModelServiceDep, require_management_key
from control_plane.api.torchserve.responses import (
    ACCEPTED_RESPONSE,
    PrettyJSONResponse,
    params_from,
    parse_params,
    status_message,
)
from control_plane.schemas.torchserve.management import RegisterModelParams, StatusMessage
from control_plane.schemas.torchserve.models import TorchServeModelPage, TorchServeModelRead
from control_plane.services.torchserve.models import RegisterModel

router = GatedRouter(
    default_response_class=PrettyJSONResponse, dependencies=[Depends(require_management_key)]
)


@router.post(
    "/models",
    operation_id="register_model",
    response_model=StatusMessage,
    responses=ACCEPTED_RESPONSE,
)
async def register_model(
    request: Request, response: Response, service: ModelServiceDep
) -> StatusMessage:
    """Register a .mar from the model store or an allowed URL."""
    params = parse_params(RegisterModelParams, await params_from(request))
    result = await run_in_threadpool(service.register, RegisterModel(**params.model_dump()))
    return status_message(result, response)


@router.get(
    "/models",
    operation_id="list_models",
    response_model=TorchServeModelPage,
    response_model_exclude_none=True,
)
def list_models(
    service: ModelServiceDep,
    limit: str | None = None,
    next_page_token: str | None = None,
) -> TorchServeModelPage:
    """List registered models (default versions) with TorchServe's pagination."""
    return service.list_page(limit, next_page_token)


@router.get(
    "/models/{model_name}",
    operation_id="describe_model",
    response_model=list[TorchServeModelRead],
)
def describe_model(model_name: str, service: ModelServiceDep) -> list[TorchServeModelRead]:
    """Describe the default version of a model."""
    return service.describe(model_name)


@router.get(
    "/models/{model_name}/{model_version}",
    operation_id="describe_model_version",
    response_model=list[TorchServeModelRead],
)
def describe_model_version(
    model_name: str,
    model_version: str,
    service: ModelServiceDep,
) -> list[TorchServeModelRead]:
    """Describe one version (or ``all``) of a model."""
    return service.describe(model_name, model_version)


@router.put(
    "/models/{model_name}",
    operation_id="scale_model",
    response_model=StatusMessage,
    responses=ACCEPTED_RESPONSE,
)
def scale_model(
    model_name: str,
    response: Response,
    service: ModelServiceDep,
    min_worker: int | None = Query(default=None),
    max_worker: int | None = Query(default=None),
    synchronous: bool = False,
    timeout: int = -1,
) -> StatusMessage:
    """Scale the default version's workers."""
    result = service.scale(model_name, None, min_worker, max_worker, synchronous, timeout)
    return status_message(result, response)


@router.put(
    "/models/{model_name}/{model_version}",
    operation_id="scale_model_version",
    response_model=StatusMessage,
    responses=ACCEPTED_RESPONSE,
)
def scale_model_version(
    model_name: str,
    model_version: str,
    response: Response,
    service: ModelServiceDep,
    min_worker: int | None = Query(default=None),
    max_worker: int | None = Query(default=None),
    synchronous: bool = False,
    timeout: int = -1,
) -> StatusMessage:
    """Scale one version's workers."""
    result = service.scale(model_name, model_version, min_worker, max_worker, synchronous, timeout)
    return status_message(result, response)


@router.put(
    "/models/{model_name}/{model_version}/set-default",
    operation_id="set_default_version",
    response_model=StatusMessage,
)
def set_default_version(
    model_name: str,
    model_version: str,
    response: Response,
    service: ModelServiceDep,
) -> StatusMessage:
    """Make a version the default."""
    return status_message(service.set_default(model_name, model_version), response)


@router.delete(
    "/models/{model_name}", operation_id="unregister_model", response_model=StatusMessage
)
def unregister_model(
    model_name: str, response: Response, service: ModelServiceDep
) -> StatusMessage:
    """Unregister every version of a model."""
    return status_message(service.unregister(model_name), response)


@router.delete(
    "/models/{model_name}/{model_version}",
    operation_id="unregister_model_version",
    response_model=StatusMessage,
)
def unregister_model_version(
    model_name: str,
    model_version: str,
    response: Response,
    service: ModelServiceDep,
) -> StatusMessage:
    """Unregister one version of a model."""
    return status_message(service.unregister(model_name, model_version), response)
