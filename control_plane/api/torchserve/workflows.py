"""TorchServe Workflow Management API: ``/workflows``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.api.torchserve.responses import (
    PrettyJSONResponse,
    params_from,
    parse_params,
    status_response,
)
from control_plane.schemas.torchserve.management import RegisterWorkflowParams
from control_plane.services.torchserve import WorkflowService

router = APIRouter()


@router.post("/workflows", operation_id="register_workflow")
async def register_workflow(
    request: Request, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> PrettyJSONResponse:
    """Register a .war from the workflow store or an allowed URL and deploy its DAG."""
    params = parse_params(RegisterWorkflowParams, await params_from(request))
    service = WorkflowService(session, gateway, settings)
    result = await run_in_threadpool(
        service.register, params.url, params.workflow_name, execution=params.execution
    )
    return status_response(result.message, result.status_code)


@router.get("/workflows", operation_id="list_workflows")
def list_workflows(
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    limit: str | None = None,
    next_page_token: str | None = None,
) -> PrettyJSONResponse:
    """List registered workflows with TorchServe's pagination."""
    body = WorkflowService(session, gateway, settings).list_page(limit, next_page_token)
    return PrettyJSONResponse(body)


@router.get("/workflows/{workflow_name}", operation_id="describe_workflow")
def describe_workflow(
    workflow_name: str, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> PrettyJSONResponse:
    """Describe a workflow (a one-element array, as TorchServe answers)."""
    return PrettyJSONResponse(WorkflowService(session, gateway, settings).describe(workflow_name))


@router.put("/workflows/{workflow_name}", operation_id="scale_workflow")
def scale_workflow(
    workflow_name: str,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    min_worker: int | None = Query(default=None, ge=0),
    max_worker: int | None = Query(default=None, ge=0),
    node: str | None = None,
) -> PrettyJSONResponse:
    """Extension: scale a registered workflow's driver, or one model node (``node=``)."""
    service = WorkflowService(session, gateway, settings)
    result = service.scale(workflow_name, min_worker, max_worker, node)
    return status_response(result.message, result.status_code)


@router.delete("/workflows/{workflow_name}", operation_id="unregister_workflow")
def unregister_workflow(
    workflow_name: str, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> PrettyJSONResponse:
    """Unregister a workflow and remove its application."""
    result = WorkflowService(session, gateway, settings).unregister(workflow_name)
    return status_response(result.message, result.status_code)
