"""CRUD in torc's shapes for the simple resources.

``/files``, ``/user_data``, ``/resource_requirements``, ``/compute_nodes``, ``/results`` and
``/events``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from control_plane.api.deps import SessionDep
from control_plane.api.torc.params import PageDep, WorkflowIdQuery
from control_plane.schemas.torc.jobs import ResultBody
from control_plane.schemas.torc.resources import (
    ComputeNodeCreate,
    EventCreate,
    FileCreate,
    ResourceRequirementsCreate,
    ResultCreate,
    UserDataCreate,
)
from control_plane.services.torc import (
    ComputeNodeService,
    EventService,
    FileService,
    ResourceRequirementsService,
    ResultService,
    UserDataService,
)

router = APIRouter(tags=["torc resources"])
AnyBody = Annotated[Any, Body()]


def _by_id(
    path: str, service: Any, body_type: Any, name: str, delete_all_key: str, *, update: bool = True
) -> None:
    """Register GET/PUT/DELETE ``/{path}/{id}`` and ``DELETE /{path}`` for a CRUD service."""

    def get_item(item_id: int, session: SessionDep) -> dict[str, Any]:
        return service(session).get(item_id)  # type: ignore[no-any-return]

    def update_item(item_id: int, body: body_type, session: SessionDep) -> dict[str, Any]:
        return service(session).update(item_id, body.model_dump(exclude_none=True))  # type: ignore[no-any-return]

    def delete_item(item_id: int, session: SessionDep, body: AnyBody = None) -> dict[str, Any]:
        return service(session).delete(item_id)  # type: ignore[no-any-return]

    def delete_items(
        workflow_id: WorkflowIdQuery, session: SessionDep, body: AnyBody = None
    ) -> dict[str, Any]:
        return {delete_all_key: service(session).delete_all(workflow_id)}

    update_item.__annotations__["body"] = body_type
    routes = [
        (get_item, "get", f"/{path}/{{item_id}}", f"Get {name}."),
        (delete_item, "delete", f"/{path}/{{item_id}}", f"Delete {name}."),
        (delete_items, "delete", f"/{path}", f"Delete every {name} of a workflow."),
    ]
    if update:
        routes.append((update_item, "put", f"/{path}/{{item_id}}", f"Update {name}."))
    for func, verb, route, doc in routes:
        func.__doc__ = doc
        getattr(router, verb)(
            route, operation_id=f"{func.__name__}_{path}", name=f"{func.__name__}_{path}"
        )(func)


@router.post("/files")
def create_file(body: FileCreate, session: SessionDep) -> dict[str, Any]:
    """Create a file record."""
    return FileService(session).create(body.model_dump(exclude_none=True))


@router.get("/files")
def list_files(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    produced_by_job_id: int | None = None,
    name: str | None = None,
    path: str | None = None,
    is_output: bool | None = None,
) -> dict[str, Any]:
    """List a workflow's files."""
    return FileService(session).list_files(
        workflow_id,
        produced_by_job_id=produced_by_job_id,
        name=name,
        path=path,
        is_output=is_output,
        **page,
    )


@router.put("/files/{item_id}")
def update_file(item_id: int, body: FileCreate, session: SessionDep) -> dict[str, Any]:
    """Update a file (``st_mtime`` is always replaced)."""
    return FileService(session).update(item_id, body.model_dump())


@router.post("/user_data")
def create_user_data(
    body: UserDataCreate,
    session: SessionDep,
    consumer_job_id: int | None = None,
    producer_job_id: int | None = None,
) -> dict[str, Any]:
    """Create user data (optionally linked to a consumer or producer job)."""
    return UserDataService(session).create_linked(
        body.model_dump(exclude_none=True),
        consumer_job_id=consumer_job_id,
        producer_job_id=producer_job_id,
    )


@router.get("/user_data")
def list_user_data(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    consumer_job_id: int | None = None,
    producer_job_id: int | None = None,
    name: str | None = None,
    is_ephemeral: bool | None = None,
) -> dict[str, Any]:
    """List a workflow's user data."""
    return UserDataService(session).list_user_data(
        workflow_id,
        consumer_job_id=consumer_job_id,
        producer_job_id=producer_job_id,
        name=name,
        is_ephemeral=is_ephemeral,
        **page,
    )


@router.post("/resource_requirements")
def create_resource_requirements(
    body: ResourceRequirementsCreate, session: SessionDep
) -> dict[str, Any]:
    """Create resource requirements."""
    return ResourceRequirementsService(session).create(body.model_dump(exclude_none=True))


@router.get("/resource_requirements")
def list_resource_requirements(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    job_id: int | None = None,
    name: str | None = None,
    memory: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    num_nodes: int | None = None,
    runtime: int | None = None,
) -> dict[str, Any]:
    """List a workflow's resource requirements."""
    return ResourceRequirementsService(session).list_requirements(
        workflow_id,
        job_id=job_id,
        name=name,
        memory=memory,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        runtime=runtime,
        **page,
    )


@router.post("/compute_nodes")
def create_compute_node(body: ComputeNodeCreate, session: SessionDep) -> dict[str, Any]:
    """Register a compute node."""
    return ComputeNodeService(session).create(body.model_dump(exclude_none=True))


@router.get("/compute_nodes")
def list_compute_nodes(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    hostname: str | None = None,
    is_active: bool | None = None,
    scheduled_compute_node_id: int | None = None,
) -> dict[str, Any]:
    """List a workflow's compute nodes."""
    return ComputeNodeService(session).list_nodes(
        workflow_id,
        hostname=hostname,
        is_active=is_active,
        scheduled_compute_node_id=scheduled_compute_node_id,
        **page,
    )


@router.post("/results")
def create_result(body: ResultCreate, session: SessionDep) -> dict[str, Any]:
    """Store a result (torc fields or the seed's exit_code/stdout/stderr)."""
    return ResultService(session).create(body.values())


@router.get("/results")
def list_results(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    job_id: int | None = None,
    run_id: int | None = None,
    return_code: int | None = None,
    status: str | None = None,
    compute_node_id: int | None = None,
    all_runs: bool = False,
) -> dict[str, Any]:
    """List results (current ones, or every run with all_runs)."""
    return ResultService(session).list_results(
        workflow_id,
        job_id=job_id,
        run_id=run_id,
        return_code=return_code,
        status=status,
        compute_node_id=compute_node_id,
        all_runs=all_runs,
        **page,
    )


@router.post("/events")
def create_event(body: EventCreate, session: SessionDep) -> dict[str, Any]:
    """Record an event (timestamped by the server)."""
    return EventService(session).create(body.model_dump(exclude_none=True))


@router.get("/events")
def list_events(
    workflow_id: WorkflowIdQuery,
    session: SessionDep,
    page: PageDep,
    after_timestamp: int | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """List a workflow's events."""
    return EventService(session).list_events(workflow_id, after_timestamp=after_timestamp, **page)


_by_id("files", FileService, FileCreate, "a file", "deleted_count", update=False)
_by_id("user_data", UserDataService, UserDataCreate, "user data", "deleted_count")
_by_id(
    "resource_requirements",
    ResourceRequirementsService,
    ResourceRequirementsCreate,
    "resource requirements",
    "count",
)
_by_id("compute_nodes", ComputeNodeService, ComputeNodeCreate, "a compute node", "count")
_by_id("results", ResultService, ResultBody, "a result", "count")
_by_id("events", EventService, EventCreate, "an event", "count")
