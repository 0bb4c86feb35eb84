"""Read-only graph views of a workflow (API 0.21): dependencies, data flows, readiness."""

from __future__ import annotations

from typing import Any

from control_plane.api.torc.deps import WorkflowGraphServiceDep
from control_plane.api.torc.params import PageDep
from control_plane.api.torc.routing import torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.graph import (
    JobDependencyPage,
    JobFileRelationshipPage,
    JobUserDataRelationshipPage,
    MissingUserDataRead,
    ReadyJobRequirementsRead,
    RequiredExistingFilesRead,
    RunningJobPage,
)

router = torc_router("torc workflow graph")


@router.get("/workflows/{workflow_id}/job_dependencies", response_model=JobDependencyPage)
def list_job_dependencies(
    workflow_id: Id64, graph: WorkflowGraphServiceDep, page: PageDep
) -> dict[str, Any]:
    """List the dependency edges of a workflow."""
    return graph.job_dependencies(workflow_id, **page)


@router.get(
    "/workflows/{workflow_id}/job_file_relationships", response_model=JobFileRelationshipPage
)
def list_job_file_relationships(
    workflow_id: Id64, graph: WorkflowGraphServiceDep, page: PageDep
) -> dict[str, Any]:
    """List which jobs produce and consume each file."""
    return graph.job_file_relationships(workflow_id, **page)


@router.get(
    "/workflows/{workflow_id}/job_user_data_relationships",
    response_model=JobUserDataRelationshipPage,
)
def list_job_user_data_relationships(
    workflow_id: Id64, graph: WorkflowGraphServiceDep, page: PageDep
) -> dict[str, Any]:
    """List which jobs produce and consume each user data document."""
    return graph.job_user_data_relationships(workflow_id, **page)


@router.get("/workflows/{workflow_id}/missing_user_data", response_model=MissingUserDataRead)
def list_missing_user_data(workflow_id: Id64, graph: WorkflowGraphServiceDep) -> dict[str, Any]:
    """User data that jobs need but that has no data."""
    return graph.missing_user_data(workflow_id)


@router.get(
    "/workflows/{workflow_id}/required_existing_files", response_model=RequiredExistingFilesRead
)
def list_required_existing_files(
    workflow_id: Id64, graph: WorkflowGraphServiceDep
) -> dict[str, Any]:
    """Files that must exist before the workflow runs."""
    return graph.required_existing_files(workflow_id)


@router.get(
    "/workflows/{workflow_id}/ready_job_requirements", response_model=ReadyJobRequirementsRead
)
def get_ready_job_requirements(
    workflow_id: Id64, graph: WorkflowGraphServiceDep, scheduler_config_id: Id64 | None = None
) -> dict[str, Any]:
    """What the ready jobs need together."""
    return graph.ready_job_requirements(workflow_id, scheduler_config_id)


@router.get("/workflows/{workflow_id}/running_jobs", response_model=RunningJobPage)
def get_running_jobs(
    workflow_id: Id64, graph: WorkflowGraphServiceDep, page: PageDep
) -> dict[str, Any]:
    """List the running jobs and their compute nodes."""
    return graph.running_jobs(workflow_id, **page)
