"""TorchServe Model Management API: ``/models``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from control_plane.api.torchserve.deps import ModelServiceDep
from control_plane.api.torchserve.responses import (
    PrettyJSONResponse,
    params_from,
    parse_params,
    status_response,
)
from control_plane.schemas.torchserve.management import RegisterModelParams
from control_plane.services.torchserve import TorchServeModelService
from control_plane.services.torchserve.models import RegisterModel

router = APIRouter()


@router.post("/models", operation_id="register_model")
async def register_model(request: Request, service: ModelServiceDep) -> PrettyJSONResponse:
    """Register a .mar from the model store or an allowed URL."""
    params = parse_params(RegisterModelParams, await params_from(request))
    result = await run_in_threadpool(service.register, RegisterModel(**params.model_dump()))
    return status_response(result.message, result.status_code)


@router.get("/models", operation_id="list_models")
def list_models(
    service: ModelServiceDep,
    limit: str | None = None,
    next_page_token: str | None = None,
) -> PrettyJSONResponse:
    """List registered models (default versions) with TorchServe's pagination."""
    body = service.list_page(limit, next_page_token)
    return PrettyJSONResponse(body)


@router.get("/models/{model_name}", operation_id="describe_model")
def describe_model(model_name: str, service: ModelServiceDep) -> PrettyJSONResponse:
    """Describe the default version of a model."""
    return PrettyJSONResponse(service.describe(model_name))


@router.get("/models/{model_name}/{model_version}", operation_id="describe_model_version")
def describe_model_version(
    model_name: str,
    model_version: str,
    service: ModelServiceDep,
) -> PrettyJSONResponse:
    """Describe one version (or ``all``) of a model."""
    return PrettyJSONResponse(service.describe(model_name, model_version))


def _scale(
    service: TorchServeModelService,
    name: str,
    version: str | None,
    min_worker: int | None,
    max_worker: int | None,
    synchronous: bool,
    timeout: int,
) -> PrettyJSONResponse:
    result = service.scale(name, version, min_worker, max_worker, synchronous, timeout)
    return status_response(result.message, result.status_code)


@router.put("/models/{model_name}", operation_id="scale_model")
def scale_model(
    model_name: str,
    service: ModelServiceDep,
    min_worker: int | None = Query(default=None),
    max_worker: int | None = Query(default=None),
    synchronous: bool = False,
    timeout: int = -1,
) -> PrettyJSONResponse:
    """Scale the default version's workers."""
    return _scale(service, model_name, None, min_worker, max_worker, synchronous, timeout)


@router.put("/models/{model_name}/{model_version}", operation_id="scale_model_version")
def scale_model_version(
    model_name: str,
    model_version: str,
    service: ModelServiceDep,
    min_worker: int | None = Query(default=None),
    max_worker: int | None = Query(default=None),
    synchronous: bool = False,
    timeout: int = -1,
) -> PrettyJSONResponse:
    """Scale one version's workers."""
    return _scale(service, model_name, model_version, min_worker, max_worker, synchronous, timeout)


@router.put("/models/{model_name}/{model_version}/set-default", operation_id="set_default_version")
def set_default_version(
    model_name: str,
    model_version: str,
    service: ModelServiceDep,
) -> PrettyJSONResponse:
    """Make a version the default."""
    result = service.set_default(model_name, model_version)
    return status_response(result.message, result.status_code)


@router.delete("/models/{model_name}", operation_id="unregister_model")
def unregister_model(model_name: str, service: ModelServiceDep) -> PrettyJSONResponse:
    """Unregister every version of a model."""
    result = service.unregister(model_name)
    return status_response(result.message, result.status_code)


@router.delete("/models/{model_name}/{model_version}", operation_id="unregister_model_version")
def unregister_model_version(
    model_name: str,
    model_version: str,
    service: ModelServiceDep,
) -> PrettyJSONResponse:
    """Unregister one version of a model."""
    result = service.unregister(model_name, model_version)
    return status_response(result.message, result.status_code)
