"""CRUD in torc's shapes for the simple resources.

``/files``, ``/user_data``, ``/resource_requirements``, ``/compute_nodes``, ``/results`` and
``/events``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Response

from control_plane.api.torc.deps import (
    ComputeNodeServiceDep,
    EventServiceDep,
    FailureHandlerServiceDep,
    FileServiceDep,
    ResourceRequirementsServiceDep,
    ResultServiceDep,
    UserDataServiceDep,
)
from control_plane.api.torc.params import PageDep, WorkflowIdQuery
from control_plane.api.torc.routing import documented, json_body, torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.base import Count, DeletedCount
from control_plane.schemas.torc.jobs import ResultBody
from control_plane.schemas.torc.resources import (
    ComputeNodeCreate,
    ComputeNodePage,
    ComputeNodeRead,
    EventCreate,
    EventPage,
    EventRead,
    FailureHandlerCreate,
    FailureHandlerPage,
    FailureHandlerRead,
    FileCreate,
    FilePage,
    FileRead,
    FilesBulk,
    FilesBulkRead,
    ResourceRequirementsCreate,
    ResourceRequirementsPage,
    ResourceRequirementsRead,
    ResultCreate,
    ResultPage,
    ResultRead,
    UserDataBulk,
    UserDataBulkRead,
    UserDataCreate,
    UserDataPage,
    UserDataRead,
)

router = torc_router("torc resources")
AnyBody = Annotated[Any, Body()]


def _by_id(
    path: str,
    service_dep: Any,
    body_type: Any,
    read: type[Any],
    name: str,
    delete_all: type[Count] | type[DeletedCount],
    *,
    update: bool = True,
) -> None:
    """Register GET/PUT/DELETE ``/{path}/{id}`` and ``DELETE /{path}`` for a CRUD service."""
    delete_all_keys = tuple(delete_all.model_fields)

    def get_item(item_id: Id64, service: Any) -> dict[str, Any]:
        return service.get(item_id)  # type: ignore[no-any-return]

    def update_item(item_id: Id64, body: Any, service: Any) -> dict[str, Any]:
        return service.update(item_id, body.model_dump(exclude_none=True))  # type: ignore[no-any-return]

    def delete_item(item_id: Id64, service: Any, body: AnyBody = None) -> dict[str, Any]:
        return service.delete(item_id)  # type: ignore[no-any-return]

    def delete_items(
        workflow_id: WorkflowIdQuery, service: Any, body: AnyBody = None
    ) -> dict[str, Any]:
        count = service.delete_all(workflow_id)
        return dict.fromkeys(delete_all_keys, count)

    routes = [
        (get_item, "get", f"/{path}/{{item_id}}", f"Get {name}.", read),
        (delete_item, "delete", f"/{path}/{{item_id}}", f"Delete {name}.", read),
        (delete_items, "delete", f"/{path}", f"Delete every {name} of a workflow.", delete_all),
    ]
    if update:
        update_item.__annotations__["body"] = body_type
        routes.append((update_item, "put", f"/{path}/{{item_id}}", f"Update {name}.", read))
    for func, verb, route, doc, model in routes:
        # The closures' annotations are resolved by FastAPI, not by the module's globals.
        func.__annotations__["service"] = service_dep
        func.__doc__ = doc
        getattr(router, verb)(
            route,
            response_model=model,
            operation_id=f"{func.__name__}_{path}",
            name=f"{func.__name__}_{path}",
        )(func)


@router.post("/files", response_model=FileRead)
def create_file(body: FileCreate, files: FileServiceDep) -> dict[str, Any]:
    """Create a file record."""
    return files.create(body.model_dump(exclude_none=True))


@router.post("/bulk_files", response_model=FilesBulkRead)
def create_files(body: FilesBulk, files: FileServiceDep) -> dict[str, Any]:
    """Create up to 10,000 files of one workflow at once (API 0.21)."""
    return {"files": files.create_many([f.model_dump(exclude_none=True) for f in body.files])}


@router.get("/files", **documented(FilePage))
def list_files(
    workflow_id: WorkflowIdQuery,
    files: FileServiceDep,
    page: PageDep,
    produced_by_job_id: Id64 | None = None,
    name: str | None = None,
    path: str | None = None,
    is_output: bool | None = None,
) -> Response:
    """List a workflow's files."""
    return json_body(
        files.list_files(
            workflow_id,
            produced_by_job_id=produced_by_job_id,
            name=name,
            path=path,
            is_output=is_output,
            **page,
        )
    )


@router.put("/files/{item_id}", response_model=FileRead)
def update_file(item_id: Id64, body: FileCreate, files: FileServiceDep) -> dict[str, Any]:
    """Update a file (``st_mtime`` is always replaced)."""
    return files.update(item_id, body.model_dump())


@router.post("/user_data", response_model=UserDataRead)
def create_user_data(
    body: UserDataCreate,
    user_data: UserDataServiceDep,
    consumer_job_id: Id64 | None = None,
    producer_job_id: Id64 | None = None,
) -> dict[str, Any]:
    """Create user data (optionally linked to a consumer or producer job)."""
    return user_data.create_linked(
        body.model_dump(exclude_none=True),
        consumer_job_id=consumer_job_id,
        producer_job_id=producer_job_id,
    )


@router.post("/bulk_user_data", response_model=UserDataBulkRead)
def create_user_data_list(body: UserDataBulk, user_data: UserDataServiceDep) -> dict[str, Any]:
    """Create up to 10,000 user data documents of one workflow at once (API 0.21)."""
    items = [u.model_dump(exclude_none=True) for u in body.user_data]
    return {"user_data": user_data.create_many(items)}


@router.get("/user_data", **documented(UserDataPage))
def list_user_data(
    workflow_id: WorkflowIdQuery,
    user_data: UserDataServiceDep,
    page: PageDep,
    consumer_job_id: Id64 | None = None,
    producer_job_id: Id64 | None = None,
    name: str | None = None,
    is_ephemeral: bool | None = None,
) -> Response:
    """List a workflow's user data."""
    return json_body(
        user_data.list_user_data(
            workflow_id,
            consumer_job_id=consumer_job_id,
            producer_job_id=producer_job_id,
            name=name,
            is_ephemeral=is_ephemeral,
            **page,
        )
    )


@router.post("/resource_requirements", response_model=ResourceRequirementsRead)
def create_resource_requirements(
    body: ResourceRequirementsCreate, requirements: ResourceRequirementsServiceDep
) -> dict[str, Any]:
    """Create resource requirements."""
    return requirements.create(body.model_dump(exclude_none=True))


@router.get("/resource_requirements", **documented(ResourceRequirementsPage))
def list_resource_requirements(
    workflow_id: WorkflowIdQuery,
    requirements: ResourceRequirementsServiceDep,
    page: PageDep,
    job_id: Id64 | None = None,
    name: str | None = None,
    memory: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    num_nodes: int | None = None,
    runtime: int | None = None,
) -> Response:
    """List a workflow's resource requirements."""
    return json_body(
        requirements.list_requirements(
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
    )


@router.post("/compute_nodes", response_model=ComputeNodeRead)
def create_compute_node(body: ComputeNodeCreate, nodes: ComputeNodeServiceDep) -> dict[str, Any]:
    """Register a compute node."""
    return nodes.create(body.model_dump(exclude_none=True))


@router.get("/compute_nodes", **documented(ComputeNodePage))
def list_compute_nodes(
    workflow_id: WorkflowIdQuery,
    nodes: ComputeNodeServiceDep,
    page: PageDep,
    hostname: str | None = None,
    is_active: bool | None = None,
    scheduled_compute_node_id: Id64 | None = None,
) -> Response:
    """List a workflow's compute nodes."""
    return json_body(
        nodes.list_nodes(
            workflow_id,
            hostname=hostname,
            is_active=is_active,
            scheduled_compute_node_id=scheduled_compute_node_id,
            **page,
        )
    )


@router.post("/results", response_model=ResultRead)
def create_result(body: ResultCreate, results: ResultServiceDep) -> dict[str, Any]:
    """Store a result (torc fields or the seed's exit_code/stdout/stderr)."""
    return results.create(body.values())


@router.get("/results", **documented(ResultPage))
def list_results(
    workflow_id: WorkflowIdQuery,
    results: ResultServiceDep,
    page: PageDep,
    job_id: Id64 | None = None,
    run_id: Id64 | None = None,
    return_code: int | None = None,
    status: str | None = None,
    compute_node_id: Id64 | None = None,
    all_runs: bool = False,
) -> Response:
    """List results (current ones, or every run with all_runs)."""
    return json_body(
        results.list_results(
            workflow_id,
            job_id=job_id,
            run_id=run_id,
            return_code=return_code,
            status=status,
            compute_node_id=compute_node_id,
            all_runs=all_runs,
            **page,
        )
    )


@router.post("/events", response_model=EventRead)
def create_event(body: EventCreate, events: EventServiceDep) -> dict[str, Any]:
    """Record an event (timestamped by the server)."""
    return events.create(body.model_dump(exclude_none=True))


@router.get("/events", **documented(EventPage))
def list_events(
    workflow_id: WorkflowIdQuery,
    events: EventServiceDep,
    page: PageDep,
    after_timestamp: int | None = None,
    category: str | None = None,
) -> Response:
    """List a workflow's events."""
    return json_body(events.list_events(workflow_id, after_timestamp=after_timestamp, **page))


@router.post("/failure_handlers", response_model=FailureHandlerRead)
def create_failure_handler(
    body: FailureHandlerCreate, handlers: FailureHandlerServiceDep
) -> dict[str, Any]:
    """Create a failure handler (its rules are checked, then stored as a JSON string)."""
    return handlers.create(body.model_dump())


@router.get("/workflows/{workflow_id}/failure_handlers", response_model=FailureHandlerPage)
def list_failure_handlers(
    workflow_id: Id64, handlers: FailureHandlerServiceDep, page: PageDep
) -> dict[str, Any]:
    """List a workflow's failure handlers."""
    return handlers.list(workflow_id, **page)


_by_id(
    "failure_handlers",
    FailureHandlerServiceDep,
    FailureHandlerCreate,
    FailureHandlerRead,
    "a failure handler",
    Count,
    update=False,
)
_by_id("files", FileServiceDep, FileCreate, FileRead, "a file", DeletedCount, update=False)
_by_id("user_data", UserDataServiceDep, UserDataCreate, UserDataRead, "user data", DeletedCount)
_by_id(
    "resource_requirements",
    ResourceRequirementsServiceDep,
    ResourceRequirementsCreate,
    ResourceRequirementsRead,
    "resource requirements",
    Count,
)
_by_id(
    "compute_nodes",
    ComputeNodeServiceDep,
    ComputeNodeCreate,
    ComputeNodeRead,
    "a compute node",
    Count,
)
_by_id("results", ResultServiceDep, ResultBody, ResultRead, "a result", Count)
_by_id("events", EventServiceDep, EventCreate, EventRead, "an event", Count)
