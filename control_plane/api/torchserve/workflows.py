"""TorchServe Workflow Management API: ``/workflows``."""

from __future__ import annotations

from fastapi import Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torchserve.deps import WorkflowServiceDep, require_management_key
from control_plane.api.torchserve.responses import (
    ACCEPTED_RESPONSE,
    PrettyJSONResponse,
    params_from,
    parse_params,
    status_message,
)
from control_plane.schemas.torchserve.management import RegisterWorkflowParams, StatusMessage
from control_plane.schemas.torchserve.workflows import (
    TorchServeWorkflowPage,
    TorchServeWorkflowRead,
)

router = GatedRouter(
    default_response_class=PrettyJSONResponse, dependencies=[Depends(require_management_key)]
)


@router.post("/workflows", operation_id="register_workflow", response_model=StatusMessage)
async def register_workflow(
    request: Request, response: Response, service: WorkflowServiceDep
) -> StatusMessage:
    """Register a .war from the workflow store or an allowed URL and deploy its DAG."""
    params = parse_params(RegisterWorkflowParams, await params_from(request))
    result = await run_in_threadpool(
        service.register, params.url, params.workflow_name, execution=params.execution
    )
    return status_message(result, response)


@router.get(
    "/workflows",
    operation_id="list_workflows",
    response_model=TorchServeWorkflowPage,
    response_model_exclude_none=True,
)
def list_workflows(
    service: WorkflowServiceDep,
    limit: str | None = None,
    next_page_token: str | None = None,
) -> TorchServeWorkflowPage:
    """List registered workflows with TorchServe's pagination."""
    return service.list_page(limit, next_page_token)


@router.get(
    "/workflows/{workflow_name}",
    operation_id="describe_workflow",
    response_model=list[TorchServeWorkflowRead],
)
def describe_workflow(
    workflow_name: str, service: WorkflowServiceDep
) -> list[TorchServeWorkflowRead]:
    """Describe a workflow (a one-element array, as TorchServe answers)."""
    return service.describe(workflow_name)


@router.put(
    "/workflows/{workflow_name}",
    operation_id="scale_workflow",
    response_model=StatusMessage,
    responses=ACCEPTED_RESPONSE,
)
def scale_workflow(
    workflow_name: str,
    response: Response,
    service: WorkflowServiceDep,
    min_worker: int | None = Query(default=None, ge=0),
    max_worker: int | None = Query(default=None, ge=0),
    node: str | None = None,
) -> StatusMessage:
    """Extension: scale a registered workflow's driver, or one model node (``node=``)."""
    return status_message(service.scale(workflow_name, min_worker, max_worker, node), response)


@router.delete(
    "/workflows/{workflow_name}", operation_id="unregister_workflow", response_model=StatusMessage
)
def unregister_workflow(
    workflow_name: str, response: Response, service: WorkflowServiceDep
) -> StatusMessage:
    """Unregister a workflow and remove its application."""
    return status_message(service.unregister(workflow_name), response)
