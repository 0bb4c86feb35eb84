"""``/jobs`` and ``/bulk_jobs``: CRUD plus start, complete, status change and retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from control_plane.api.deps import SessionDep
from control_plane.api.torc.hotdeps import SessionFactoryDep, in_session
from control_plane.api.torc.params import PageDep, WorkflowIdQuery
from control_plane.schemas.torc.jobs import (
    JobCreate,
    JobsBulk,
    JobUpdate,
    ResultBody,
    StatusChangeRequest,
)
from control_plane.services.torc import JobService, JobTransitionService

router = APIRouter(tags=["torc jobs"])
AnyBody = Annotated[Any, Body()]


@router.post("/jobs")
def create_job(body: JobCreate, session: SessionDep) -> dict[str, Any]:
    """Create a job."""
    return JobService(session).create(body.model_dump(exclude_none=True))


@router.post("/bulk_jobs")
def create_jobs(body: JobsBulk, session: SessionDep) -> dict[str, Any]:
    """Create up to 10,000 jobs of one workflow at once."""
    jobs = [j.model_dump(exclude_none=True) for j in body.jobs]
    return {"jobs": JobService(session).create_many(jobs)}


@router.get("/jobs")
def list_jobs(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    status: str | None = None,
    needs_file_id: int | None = None,
    upstream_job_id: int | None = None,
    active_compute_node_id: int | None = None,
    include_relationships: bool = False,
) -> dict[str, Any]:
    """List a workflow's jobs."""
    return JobService(session).list(
        workflow_id,
        status=status,
        needs_file_id=needs_file_id,
        upstream_job_id=upstream_job_id,
        active_compute_node_id=active_compute_node_id,
        include_relationships=include_relationships,
        **page,
    )


@router.delete("/jobs")
def delete_jobs(
    workflow_id: WorkflowIdQuery, session: SessionDep, body: AnyBody = None
) -> dict[str, Any]:
    """Delete every job of a workflow."""
    return {"count": JobService(session).delete_all(workflow_id)}


@router.get("/jobs/{job_id}")
def get_job(job_id: int, session: SessionDep) -> dict[str, Any]:
    """Get a job with its relationships."""
    return JobService(session).get(job_id)


@router.put("/jobs/{job_id}")
def update_job(job_id: int, body: JobUpdate, session: SessionDep) -> dict[str, Any]:
    """Update a job (restricted outside 'uninitialized')."""
    return JobService(session).update(job_id, body.model_dump(exclude_unset=True))


@router.delete("/jobs/{job_id}")
def delete_job(job_id: int, session: SessionDep, body: AnyBody = None) -> dict[str, Any]:
    """Delete a job."""
    return JobService(session).delete(job_id)


@router.put("/jobs/{job_id}/start_job/{run_id}/{compute_node_id}")
async def start_job(
    job_id: int, run_id: int, compute_node_id: int, factory: SessionFactoryDep, body: AnyBody = None
) -> dict[str, Any]:
    """Mark a pending job running on a compute node."""
    return await in_session(
        factory, lambda s: JobTransitionService(s).start(job_id, run_id, compute_node_id)
    )


@router.post("/jobs/{job_id}/complete_job/{status}/{run_id}")
async def complete_job(
    job_id: int, status: str, run_id: int, body: ResultBody, factory: SessionFactoryDep
) -> dict[str, Any]:
    """Finish a job with its result; dependents are unblocked immediately."""
    values = body.values()
    return await in_session(
        factory, lambda s: JobTransitionService(s).complete(job_id, status, run_id, values)
    )


@router.put("/jobs/{job_id}/manage_status_change/{status}/{run_id}")
def manage_status_change(
    job_id: int, status: str, run_id: int, session: SessionDep, body: AnyBody = None
) -> dict[str, Any]:
    """Set a job's (non-finished) status."""
    return JobTransitionService(session).manage_status_change(job_id, status, run_id)


@router.post("/jobs/{job_id}/manage_status_change")
def manage_status_change_seed(
    job_id: int, body: StatusChangeRequest, session: SessionDep
) -> dict[str, Any]:
    """Seed spelling of manage_status_change: ``{"target_status", "run_id"?}`` in the body."""
    return JobTransitionService(session).manage_status_change(
        job_id, body.target_status, body.run_id
    )


@router.post("/jobs/{job_id}/retry/{run_id}")
def retry_job(
    job_id: int,
    run_id: int,
    session: SessionDep,
    max_retries: Annotated[int, Query(ge=1, description="Highest attempt allowed.")],
    body: AnyBody = None,
) -> dict[str, Any]:
    """Send a failed or running job back to ready (attempt_id + 1)."""
    return JobTransitionService(session).retry(job_id, run_id, max_retries)
