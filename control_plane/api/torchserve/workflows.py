"""TorchServe Workflow Management API: ``/workflows``."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from control_plane.api.torchserve.deps import WorkflowServiceDep
from control_plane.api.torchserve.responses import (
    PrettyJSONResponse,
    params_from,
    parse_params,
    status_response,
)
from control_plane.schemas.torchserve.management import RegisterWorkflowParams

router = APIRouter()


@router.post("/workflows", operation_id="register_workflow")
async def register_workflow(request: Request, service: WorkflowServiceDep) -> PrettyJSONResponse:
    """Register a .war from the workflow store or an allowed URL and deploy its DAG."""
    params = parse_params(RegisterWorkflowParams, await params_from(request))
    result = await run_in_threadpool(
        service.register, params.url, params.workflow_name, execution=params.execution
    )
    return status_response(result.message, result.status_code)


@router.get("/workflows", operation_id="list_workflows")
def list_workflows(
    service: WorkflowServiceDep,
    limit: str | None = None,
    next_page_token: str | None = None,
) -> PrettyJSONResponse:
    """List registered workflows with TorchServe's pagination."""
    body = service.list_page(limit, next_page_token)
    return PrettyJSONResponse(body)


@router.get("/workflows/{workflow_name}", operation_id="describe_workflow")
def describe_workflow(workflow_name: str, service: WorkflowServiceDep) -> PrettyJSONResponse:
    """Describe a workflow (a one-element array, as TorchServe answers)."""
    return PrettyJSONResponse(service.describe(workflow_name))


@router.put("/workflows/{workflow_name}", operation_id="scale_workflow")
def scale_workflow(
    workflow_name: str,
    service: WorkflowServiceDep,
    min_worker: int | None = Query(default=None, ge=0),
    max_worker: int | None = Query(default=None, ge=0),
    node: str | None = None,
) -> PrettyJSONResponse:
    """Extension: scale a registered workflow's driver, or one model node (``node=``)."""
    result = service.scale(workflow_name, min_worker, max_worker, node)
    return status_response(result.message, result.status_code)


@router.delete("/workflows/{workflow_name}", operation_id="unregister_workflow")
def unregister_workflow(workflow_name: str, service: WorkflowServiceDep) -> PrettyJSONResponse:
    """Unregister a workflow and remove its application."""
    result = service.unregister(workflow_name)
    return status_response(result.message, result.status_code)
