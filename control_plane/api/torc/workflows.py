"""``/workflows``: CRUD, status record, initialize, claim, completeness (torc v0.12)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Body, Query, Response

from control_plane.api.torc.deps import (
    HotClaimsDep,
    HotTransitionsDep,
    JobInitializerDep,
    SessionFactoryDep,
    TaskServiceDep,
    TransitionServiceDep,
    WorkflowServiceDep,
)
from control_plane.api.torc.params import PageDep
from control_plane.api.torc.routing import documented, json_body, torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.jobs import (
    BatchCompleteJobsRead,
    BatchCompleteJobsRequest,
    ClaimedJobs,
    ComputeNodesResources,
)
from control_plane.schemas.torc.workflows import (
    ActiveTaskRead,
    ArchiveWorkflowRequest,
    ChangedJobInputs,
    InitializeJobsBody,
    InitializeJobsRead,
    ResetJobStatusRead,
    TaskRead,
    TorcWorkflowPage,
    TorcWorkflowRead,
    TorcWorkflowStatusRead,
    WorkflowCompletion,
    WorkflowCreate,
    WorkflowJobIds,
    WorkflowStatusSummary,
    WorkflowStatusUpdate,
    WorkflowUninitialized,
    WorkflowWithStatus,
)
from control_plane.services.torc.claims import DEFAULT_CLAIM_LIMIT
from control_plane.services.torc.tasks import run_initialize_task

router = torc_router("torc workflows")
AnyBody = Annotated[Any, Body()]


@router.post("/workflows", response_model=TorcWorkflowRead)
def create_workflow(body: WorkflowCreate, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Create a workflow."""
    return workflows.create(body.model_dump(exclude_none=True))


@router.get("/workflows", **documented(TorcWorkflowPage))
def list_workflows(
    workflows: WorkflowServiceDep,
    page: PageDep,
    name: str | None = None,
    user: str | None = None,
    description: str | None = None,
    is_archived: bool | None = None,
) -> Response:
    """List workflows."""
    return json_body(
        workflows.list(
            name=name, user=user, description=description, is_archived=is_archived, **page
        )
    )


@router.get("/workflows/{workflow_id}", response_model=TorcWorkflowRead)
def get_workflow(workflow_id: Id64, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Get a workflow."""
    return workflows.get(workflow_id)


@router.put("/workflows/{workflow_id}", response_model=TorcWorkflowRead)
def update_workflow(
    workflow_id: Id64, body: WorkflowCreate, workflows: WorkflowServiceDep
) -> dict[str, Any]:
    """Update a workflow."""
    return workflows.update(workflow_id, body.model_dump(exclude_none=True))


@router.delete("/workflows/{workflow_id}", response_model=TorcWorkflowRead)
def delete_workflow(
    workflow_id: Id64, workflows: WorkflowServiceDep, body: AnyBody = None
) -> dict[str, Any]:
    """Delete a workflow and everything in it."""
    return workflows.delete(workflow_id)


@router.get("/workflows/{workflow_id}/status", response_model=WorkflowStatusSummary)
def get_workflow_status(workflow_id: Id64, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Get the workflow status record and its job counts (v0.12 and API 0.21 in one body)."""
    return workflows.get_status(workflow_id)


@router.post("/workflows/{workflow_id}/archive", response_model=TorcWorkflowRead)
def archive_workflow(
    workflow_id: Id64, body: ArchiveWorkflowRequest, workflows: WorkflowServiceDep
) -> dict[str, Any]:
    """Archive or unarchive a workflow (API 0.21)."""
    return workflows.archive(workflow_id, is_archived=body.is_archived)


@router.put("/workflows/{workflow_id}/status", response_model=TorcWorkflowStatusRead)
def update_workflow_status(
    workflow_id: Id64, body: WorkflowStatusUpdate, workflows: WorkflowServiceDep
) -> dict[str, Any]:
    """Replace the workflow status record (bump run_id, archive)."""
    return workflows.put_status(workflow_id, body.model_dump())


@router.put(
    "/workflows/{workflow_id}/cancel",
    response_model=TorcWorkflowStatusRead | WorkflowWithStatus,
)
def cancel_workflow(
    workflow_id: Id64, workflows: WorkflowServiceDep, body: AnyBody = None
) -> dict[str, Any]:
    """Cancel a workflow."""
    return workflows.cancel(workflow_id)


@router.post(
    "/workflows/{workflow_id}/reset_status",
    response_model=TorcWorkflowStatusRead | WorkflowWithStatus,
)
def reset_workflow_status(
    workflow_id: Id64, workflows: WorkflowServiceDep, force: bool = False, body: AnyBody = None
) -> dict[str, Any]:
    """Clear the canceled and completion flags (API 0.21 clients: and start the next run)."""
    return workflows.reset_status(workflow_id, force=force)


@router.post("/workflows/{workflow_id}/reset_job_status", response_model=ResetJobStatusRead)
def reset_job_status(
    workflow_id: Id64,
    transitions: TransitionServiceDep,
    failed_only: bool = False,
    body: AnyBody = None,
) -> dict[str, Any]:
    """Reset jobs to uninitialized (all, or failed ones and their downstream)."""
    return transitions.reset_job_status(workflow_id, failed_only=failed_only)


@router.post(
    "/workflows/{workflow_id}/initialize_jobs",
    response_model=InitializeJobsRead | TaskRead,
    responses={
        202: {"model": TaskRead, "description": "``async=true``: the queued task."},
        409: {"description": "The workflow has an active task."},
    },
)
def initialize_jobs(
    workflow_id: Id64,
    initializer: JobInitializerDep,
    tasks: TaskServiceDep,
    factory: SessionFactoryDep,
    background: BackgroundTasks,
    response: Response,
    only_uninitialized: bool | None = None,
    clear_ephemeral_user_data: bool = True,
    run_async: Annotated[
        bool, Query(alias="async", description="Answer 202 with a task and run in the background.")
    ] = False,
    body: Annotated[InitializeJobsBody | None, Body()] = None,
) -> dict[str, Any]:
    """Evaluate dependencies: jobs become blocked or ready (async: 202 with a task)."""
    if only_uninitialized is None:
        only_uninitialized = bool(body and body.reinitialize)
    if run_async:
        task = tasks.create_initialize(workflow_id)
        background.add_task(
            run_initialize_task, factory, task["id"], only_uninitialized=only_uninitialized
        )
        response.status_code = 202
        return task
    tasks.check_idle(workflow_id)
    return initializer.initialize(workflow_id, only_uninitialized=only_uninitialized)


@router.get("/workflows/{workflow_id}/active_task", response_model=ActiveTaskRead)
def get_active_task(workflow_id: Id64, tasks: TaskServiceDep) -> dict[str, Any]:
    """The workflow's queued or running task, or null."""
    return tasks.active(workflow_id)


@router.get("/tasks/{task_id}", response_model=TaskRead)
def get_task(task_id: Id64, tasks: TaskServiceDep) -> dict[str, Any]:
    """An asynchronous task."""
    return tasks.get(task_id)


@router.post("/workflows/{workflow_id}/process_changed_job_inputs", response_model=ChangedJobInputs)
def process_changed_job_inputs(
    workflow_id: Id64, initializer: JobInitializerDep, dry_run: bool = False, body: AnyBody = None
) -> dict[str, Any]:
    """Reset jobs whose inputs changed since the last initialize."""
    return initializer.process_changed_inputs(workflow_id, dry_run=dry_run)


@router.post("/workflows/{workflow_id}/claim_next_jobs", response_model=ClaimedJobs)
async def claim_next_jobs(
    workflow_id: Id64,
    claims: HotClaimsDep,
    limit: Annotated[int | None, Query(description="How many jobs (default 10).")] = None,
    num_jobs: Annotated[int | None, Query(description="Seed alias of limit.")] = None,
    body: AnyBody = None,
) -> dict[str, Any]:
    """Claim ready jobs (ready -> pending)."""
    count = next((n for n in (limit, num_jobs) if n is not None), DEFAULT_CLAIM_LIMIT)
    return await claims.run(lambda c: c.claim_next(workflow_id, count))


@router.post(
    "/workflows/{workflow_id}/claim_jobs_based_on_resources/{limit}", response_model=ClaimedJobs
)
async def claim_jobs_based_on_resources(
    workflow_id: Id64,
    limit: int,
    body: ComputeNodesResources,
    claims: HotClaimsDep,
    sort_method: str | None = None,
    strict_scheduler_match: bool = False,
) -> dict[str, Any]:
    """Claim ready jobs that fit the offered capacity."""
    offer = body.model_dump()
    return await claims.run(
        lambda c: c.claim_by_resources(
            workflow_id,
            limit,
            offer,
            sort_method=sort_method,
            strict_scheduler_match=strict_scheduler_match,
        )
    )


@router.get("/workflows/{workflow_id}/is_complete", response_model=WorkflowCompletion)
def is_workflow_complete(workflow_id: Id64, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Whether every job finished (or the workflow was canceled)."""
    return workflows.is_complete(workflow_id)


@router.get("/workflows/{workflow_id}/is_uninitialized", response_model=WorkflowUninitialized)
def is_workflow_uninitialized(workflow_id: Id64, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Whether every job is uninitialized or disabled."""
    return workflows.is_uninitialized(workflow_id)


@router.get("/workflows/{workflow_id}/job_ids", response_model=WorkflowJobIds)
def list_job_ids(workflow_id: Id64, workflows: WorkflowServiceDep) -> dict[str, Any]:
    """Every job id of the workflow."""
    return workflows.job_ids(workflow_id)


@router.post("/workflows/{workflow_id}/batch_complete_jobs", response_model=BatchCompleteJobsRead)
async def batch_complete_jobs(
    workflow_id: Id64, body: BatchCompleteJobsRequest, transitions: HotTransitionsDep
) -> dict[str, Any]:
    """Complete many jobs at once; per-job problems are listed in ``errors``."""
    completions = [
        {"job_id": c.job_id, "status": c.status, "run_id": c.run_id, "result": c.result.values()}
        for c in body.completions
    ]
    return await transitions.run(lambda t: t.complete_batch(workflow_id, completions))
