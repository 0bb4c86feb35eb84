"""``/workflows``: CRUD, status record, initialize, claim, completeness (torc v0.12)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from control_plane.api.deps import SessionDep
from control_plane.api.torc.hotdeps import SessionFactoryDep, in_session
from control_plane.api.torc.params import PageDep
from control_plane.schemas.torc.jobs import BatchCompleteJobsRequest, ComputeNodesResources
from control_plane.schemas.torc.workflows import (
    InitializeJobsBody,
    WorkflowCreate,
    WorkflowStatusUpdate,
)
from control_plane.services.torc import (
    ClaimService,
    JobInitializer,
    JobTransitionService,
    WorkflowService,
)

router = APIRouter(tags=["torc workflows"])
AnyBody = Annotated[Any, Body()]


@router.post("/workflows")
def create_workflow(body: WorkflowCreate, session: SessionDep) -> dict[str, Any]:
    """Create a workflow."""
    return WorkflowService(session).create(body.model_dump(exclude_none=True))


@router.get("/workflows")
def list_workflows(
    session: SessionDep,
    page: PageDep,
    name: str | None = None,
    user: str | None = None,
    description: str | None = None,
    is_archived: bool | None = None,
) -> dict[str, Any]:
    """List workflows."""
    return WorkflowService(session).list(
        name=name, user=user, description=description, is_archived=is_archived, **page
    )


@router.get("/workflows/{workflow_id}")
def get_workflow(workflow_id: int, session: SessionDep) -> dict[str, Any]:
    """Get a workflow."""
    return WorkflowService(session).get(workflow_id)


@router.put("/workflows/{workflow_id}")
def update_workflow(workflow_id: int, body: WorkflowCreate, session: SessionDep) -> dict[str, Any]:
    """Update a workflow."""
    return WorkflowService(session).update(workflow_id, body.model_dump(exclude_none=True))


@router.delete("/workflows/{workflow_id}")
def delete_workflow(workflow_id: int, session: SessionDep, body: AnyBody = None) -> dict[str, Any]:
    """Delete a workflow and everything in it."""
    return WorkflowService(session).delete(workflow_id)


@router.get("/workflows/{workflow_id}/status")
def get_workflow_status(workflow_id: int, session: SessionDep) -> dict[str, Any]:
    """Get the workflow status record."""
    return WorkflowService(session).get_status(workflow_id)


@router.put("/workflows/{workflow_id}/status")
def update_workflow_status(
    workflow_id: int, body: WorkflowStatusUpdate, session: SessionDep
) -> dict[str, Any]:
    """Replace the workflow status record (bump run_id, archive)."""
    return WorkflowService(session).put_status(workflow_id, body.model_dump())


@router.put("/workflows/{workflow_id}/cancel")
def cancel_workflow(workflow_id: int, session: SessionDep, body: AnyBody = None) -> dict[str, Any]:
    """Cancel a workflow."""
    return WorkflowService(session).cancel(workflow_id)


@router.post("/workflows/{workflow_id}/reset_status")
def reset_workflow_status(
    workflow_id: int, session: SessionDep, force: bool = False, body: AnyBody = None
) -> dict[str, Any]:
    """Clear the canceled and completion flags."""
    return WorkflowService(session).reset_status(workflow_id, force=force)


@router.post("/workflows/{workflow_id}/reset_job_status")
def reset_job_status(
    workflow_id: int, session: SessionDep, failed_only: bool = False, body: AnyBody = None
) -> dict[str, Any]:
    """Reset jobs to uninitialized (all, or failed ones and their downstream)."""
    return JobTransitionService(session).reset_job_status(workflow_id, failed_only=failed_only)


@router.post("/workflows/{workflow_id}/initialize_jobs")
def initialize_jobs(
    workflow_id: int,
    session: SessionDep,
    only_uninitialized: bool | None = None,
    clear_ephemeral_user_data: bool = True,
    body: Annotated[InitializeJobsBody | None, Body()] = None,
) -> dict[str, Any]:
    """Evaluate dependencies: jobs become blocked or ready."""
    if only_uninitialized is None:
        only_uninitialized = bool(body and body.reinitialize)
    return JobInitializer(session).initialize(workflow_id, only_uninitialized=only_uninitialized)


@router.post("/workflows/{workflow_id}/process_changed_job_inputs")
def process_changed_job_inputs(
    workflow_id: int, session: SessionDep, dry_run: bool = False, body: AnyBody = None
) -> dict[str, Any]:
    """Reset jobs whose inputs changed since the last initialize."""
    return JobInitializer(session).process_changed_inputs(workflow_id, dry_run=dry_run)


@router.post("/workflows/{workflow_id}/claim_next_jobs")
async def claim_next_jobs(
    workflow_id: int,
    factory: SessionFactoryDep,
    limit: Annotated[int | None, Query(description="How many jobs (default 10).")] = None,
    num_jobs: Annotated[int | None, Query(description="Seed alias of limit.")] = None,
    body: AnyBody = None,
) -> dict[str, Any]:
    """Claim ready jobs (ready -> pending)."""
    count = limit if limit is not None else num_jobs if num_jobs is not None else 10
    return await in_session(factory, lambda s: ClaimService(s).claim_next(workflow_id, count))


@router.post("/workflows/{workflow_id}/claim_jobs_based_on_resources/{limit}")
def claim_jobs_based_on_resources(
    workflow_id: int,
    limit: int,
    body: ComputeNodesResources,
    session: SessionDep,
    sort_method: str | None = None,
    strict_scheduler_match: bool = False,
) -> dict[str, Any]:
    """Claim ready jobs that fit the offered capacity."""
    return ClaimService(session).claim_by_resources(
        workflow_id,
        limit,
        body.model_dump(),
        sort_method=sort_method,
        strict_scheduler_match=strict_scheduler_match,
    )


@router.get("/workflows/{workflow_id}/is_complete")
def is_workflow_complete(workflow_id: int, session: SessionDep) -> dict[str, Any]:
    """Whether every job finished (or the workflow was canceled)."""
    return WorkflowService(session).is_complete(workflow_id)


@router.get("/workflows/{workflow_id}/is_uninitialized")
def is_workflow_uninitialized(workflow_id: int, session: SessionDep) -> dict[str, Any]:
    """Whether every job is uninitialized or disabled."""
    return WorkflowService(session).is_uninitialized(workflow_id)


@router.get("/workflows/{workflow_id}/job_ids")
def list_job_ids(workflow_id: int, session: SessionDep) -> dict[str, Any]:
    """Every job id of the workflow."""
    return WorkflowService(session).job_ids(workflow_id)


@router.post("/workflows/{workflow_id}/batch_complete_jobs")
async def batch_complete_jobs(
    workflow_id: int, body: BatchCompleteJobsRequest, factory: SessionFactoryDep
) -> dict[str, Any]:
    """Complete many jobs at once; per-job problems are listed in ``errors``."""
    completions = [
        {"job_id": c.job_id, "status": c.status, "run_id": c.run_id, "result": c.result.values()}
        for c in body.completions
    ]
    return await in_session(
        factory, lambda s: JobTransitionService(s).complete_batch(workflow_id, completions)
    )
