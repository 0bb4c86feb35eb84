"""``/jobs`` and ``/bulk_jobs``: CRUD plus start, complete, status change and retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query, Response

from control_plane.api.torc.deps import (
    HotTransitionsDep,
    JobServiceDep,
    SpawnServiceDep,
    TransitionServiceDep,
)
from control_plane.api.torc.params import PageDep, WorkflowIdQuery
from control_plane.api.torc.routing import documented, json_body, torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.base import Count
from control_plane.schemas.torc.jobs import (
    JobCreate,
    JobPage,
    JobRead,
    JobsBulk,
    JobsBulkRead,
    JobUpdate,
    ResultBody,
    SpawnJobsRead,
    SpawnJobsRequest,
    StatusChangeRequest,
)

router = torc_router("torc jobs")
AnyBody = Annotated[Any, Body()]


@router.post("/jobs", response_model=JobRead)
def create_job(body: JobCreate, jobs: JobServiceDep) -> dict[str, Any]:
    """Create a job."""
    return jobs.create(body.model_dump(exclude_none=True))


@router.post("/bulk_jobs", **documented(JobsBulkRead))
def create_jobs(body: JobsBulk, jobs: JobServiceDep) -> Response:
    """Create up to 10,000 jobs of one workflow at once."""
    created = jobs.create_many([j.model_dump(exclude_none=True) for j in body.jobs])
    return json_body({"jobs": created})


@router.get("/jobs", **documented(JobPage))
def list_jobs(
    workflow_id: WorkflowIdQuery,
    jobs: JobServiceDep,
    page: PageDep,
    status: str | None = None,
    needs_file_id: Id64 | None = None,
    upstream_job_id: Id64 | None = None,
    active_compute_node_id: Id64 | None = None,
    include_relationships: bool = False,
    name: Annotated[str | None, Query(description="Name substring (case-insensitive).")] = None,
    command: Annotated[
        str | None, Query(description="Command substring (case-insensitive).")
    ] = None,
    origin_is_set: Annotated[
        bool | None, Query(description="Only jobs with (true) or without (false) an origin.")
    ] = None,
) -> Response:
    """List a workflow's jobs."""
    return json_body(
        jobs.list(
            workflow_id,
            status=status,
            needs_file_id=needs_file_id,
            upstream_job_id=upstream_job_id,
            active_compute_node_id=active_compute_node_id,
            include_relationships=include_relationships,
            name=name,
            command=command,
            origin_is_set=origin_is_set,
            **page,
        )
    )


@router.delete("/jobs", response_model=Count)
def delete_jobs(
    workflow_id: WorkflowIdQuery, jobs: JobServiceDep, body: AnyBody = None
) -> dict[str, Any]:
    """Delete every job of a workflow."""
    return {"count": jobs.delete_all(workflow_id)}


@router.get("/jobs/{job_id}", response_model=JobRead)
def get_job(job_id: Id64, jobs: JobServiceDep) -> dict[str, Any]:
    """Get a job with its relationships."""
    return jobs.get(job_id)


@router.put("/jobs/{job_id}", response_model=JobRead)
def update_job(job_id: Id64, body: JobUpdate, jobs: JobServiceDep) -> dict[str, Any]:
    """Update a job (restricted outside 'uninitialized')."""
    return jobs.update(job_id, body.model_dump(exclude_unset=True))


@router.delete("/jobs/{job_id}", response_model=JobRead)
def delete_job(job_id: Id64, jobs: JobServiceDep, body: AnyBody = None) -> dict[str, Any]:
    """Delete a job."""
    return jobs.delete(job_id)


@router.put("/jobs/{job_id}/start_job/{run_id}/{compute_node_id}", response_model=JobRead)
async def start_job(
    job_id: Id64,
    run_id: Id64,
    compute_node_id: Id64,
    transitions: HotTransitionsDep,
    body: AnyBody = None,
) -> dict[str, Any]:
    """Mark a pending job running on a compute node."""
    return await transitions.run(lambda t: t.start(job_id, run_id, compute_node_id))


@router.post("/jobs/{job_id}/complete_job/{status}/{run_id}", response_model=JobRead)
async def complete_job(
    job_id: Id64, status: str, run_id: Id64, body: ResultBody, transitions: HotTransitionsDep
) -> dict[str, Any]:
    """Finish a job with its result; dependents are unblocked immediately."""
    values = body.values()
    return await transitions.run(lambda t: t.complete(job_id, status, run_id, values))


@router.put("/jobs/{job_id}/manage_status_change/{status}/{run_id}", response_model=JobRead)
def manage_status_change(
    job_id: Id64, status: str, run_id: Id64, transitions: TransitionServiceDep, body: AnyBody = None
) -> dict[str, Any]:
    """Set a job's (non-finished) status."""
    return transitions.manage_status_change(job_id, status, run_id)


@router.post("/jobs/{job_id}/manage_status_change", response_model=JobRead)
def manage_status_change_seed(
    job_id: Id64, body: StatusChangeRequest, transitions: TransitionServiceDep
) -> dict[str, Any]:
    """Seed spelling of manage_status_change: ``{"target_status", "run_id"?}`` in the body."""
    return transitions.manage_status_change(job_id, body.target_status, body.run_id)


@router.post("/jobs/{job_id}/retry/{run_id}", response_model=JobRead)
def retry_job(
    job_id: Id64,
    run_id: Id64,
    transitions: TransitionServiceDep,
    max_retries: Annotated[int, Query(ge=1, description="Highest attempt allowed.")],
    body: AnyBody = None,
) -> dict[str, Any]:
    """Send a failed or running job back to ready (attempt_id + 1)."""
    return transitions.retry(job_id, run_id, max_retries)


@router.post("/jobs/{job_id}/spawn_jobs", response_model=SpawnJobsRead)
def spawn_jobs(job_id: Id64, body: SpawnJobsRequest, spawner: SpawnServiceDep) -> dict[str, Any]:
    """Add jobs blocked on this job, in one transaction (API 0.21 dynamic jobs)."""
    jobs = [j.model_dump(exclude_none=True) for j in body.jobs]
    return spawner.spawn(job_id, jobs, lineage=body.lineage, state=body.state)
