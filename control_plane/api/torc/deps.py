"""Dependencies of the Torc routes: every service comes from a provider, once per request.

Providers are ``async def``: building a service does no I/O, and FastAPI runs a sync
dependency in its threadpool (one more worker-thread hop per request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.db.session import session_scope
from control_plane.schemas.torc.generation import (
    GENERATION_HEADER,
    ApiGeneration,
    detect_generation,
)
from control_plane.services.torc import (
    ClaimService,
    ComputeNodeService,
    EventService,
    FailureHandlerService,
    FileService,
    JobInitializer,
    JobService,
    JobTransitionService,
    ResourceRequirementsService,
    ResultService,
    RunnerService,
    SpawnService,
    TaskService,
    UserDataService,
    WorkflowActionService,
    WorkflowGraphService,
    WorkflowService,
)

S = TypeVar("S")
T = TypeVar("T")


async def get_api_generation(request: Request) -> ApiGeneration:
    """The torc client generation of the request (User-Agent, or the opt-in header)."""
    return detect_generation(
        request.headers.get("user-agent"), request.headers.get(GENERATION_HEADER)
    )


ApiGenerationDep = Annotated[ApiGeneration, Depends(get_api_generation)]


async def get_workflow_service(
    session: SessionDep, generation: ApiGenerationDep
) -> WorkflowService:
    """Workflows and their status records, in the shapes of the client's generation."""
    return WorkflowService(session, generation)


async def get_workflow_graph_service(session: SessionDep) -> WorkflowGraphService:
    """Read-only views of a workflow's graph."""
    return WorkflowGraphService(session)


async def get_workflow_action_service(session: SessionDep) -> WorkflowActionService:
    """Workflow actions."""
    return WorkflowActionService(session)


async def get_spawn_service(session: SessionDep) -> SpawnService:
    """``spawn_jobs``."""
    return SpawnService(session)


async def get_task_service(session: SessionDep) -> TaskService:
    """Asynchronous tasks."""
    return TaskService(session)


async def get_job_service(session: SessionDep) -> JobService:
    """Job CRUD."""
    return JobService(session)


async def get_transition_service(session: SessionDep) -> JobTransitionService:
    """The job state machine (status changes, retries, resets)."""
    return JobTransitionService(session)


async def get_job_initializer(session: SessionDep) -> JobInitializer:
    """``initialize_jobs`` and ``process_changed_job_inputs``."""
    return JobInitializer(session)


async def get_file_service(session: SessionDep) -> FileService:
    """``/files``."""
    return FileService(session)


async def get_user_data_service(session: SessionDep) -> UserDataService:
    """``/user_data``."""
    return UserDataService(session)


async def get_resource_requirements_service(session: SessionDep) -> ResourceRequirementsService:
    """``/resource_requirements``."""
    return ResourceRequirementsService(session)


async def get_compute_node_service(session: SessionDep) -> ComputeNodeService:
    """``/compute_nodes``."""
    return ComputeNodeService(session)


async def get_result_service(session: SessionDep) -> ResultService:
    """``/results``."""
    return ResultService(session)


async def get_event_service(session: SessionDep) -> EventService:
    """``/events``."""
    return EventService(session)


async def get_failure_handler_service(session: SessionDep) -> FailureHandlerService:
    """``/failure_handlers``."""
    return FailureHandlerService(session)


async def get_runner_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> RunnerService:
    """The built-in Ray runner of a workflow (a Serve application)."""
    return RunnerService(session, gateway, settings)


WorkflowServiceDep = Annotated[WorkflowService, Depends(get_workflow_service)]
JobServiceDep = Annotated[JobService, Depends(get_job_service)]
SpawnServiceDep = Annotated[SpawnService, Depends(get_spawn_service)]
TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]
WorkflowActionServiceDep = Annotated[WorkflowActionService, Depends(get_workflow_action_service)]
WorkflowGraphServiceDep = Annotated[WorkflowGraphService, Depends(get_workflow_graph_service)]
TransitionServiceDep = Annotated[JobTransitionService, Depends(get_transition_service)]
JobInitializerDep = Annotated[JobInitializer, Depends(get_job_initializer)]
FileServiceDep = Annotated[FileService, Depends(get_file_service)]
UserDataServiceDep = Annotated[UserDataService, Depends(get_user_data_service)]
ResourceRequirementsServiceDep = Annotated[
    ResourceRequirementsService, Depends(get_resource_requirements_service)
]
ComputeNodeServiceDep = Annotated[ComputeNodeService, Depends(get_compute_node_service)]
ResultServiceDep = Annotated[ResultService, Depends(get_result_service)]
EventServiceDep = Annotated[EventService, Depends(get_event_service)]
FailureHandlerServiceDep = Annotated[FailureHandlerService, Depends(get_failure_handler_service)]
RunnerServiceDep = Annotated[RunnerService, Depends(get_runner_service)]


class InWorker(Generic[S]):
    """A service for the runner's hot endpoints, built in one worker-thread call per request.

    The hot endpoints (claim, start, complete) are async and run their whole session in one
    worker-thread call, instead of the three hops a sync session dependency plus a sync
    endpoint cost (measured: ~3x the latency under load).
    """

    def __init__(self, factory: sessionmaker[Session], build: Callable[[Session], S]) -> None:
        self.factory = factory
        self.build = build

    async def run(self, work: Callable[[S], T]) -> T:
        """``work(service)`` in a worker thread, with a session that is always closed."""

        def call() -> T:
            with session_scope(self.factory) as session:
                return work(self.build(session))

        return await run_in_threadpool(call)


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """The app's session factory."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_hot_claims(factory: SessionFactoryDep) -> InWorker[ClaimService]:
    """Claims, run in one worker-thread call."""
    return InWorker(factory, ClaimService)


async def get_hot_transitions(factory: SessionFactoryDep) -> InWorker[JobTransitionService]:
    """Start and complete, run in one worker-thread call."""
    return InWorker(factory, JobTransitionService)


HotClaimsDep = Annotated[InWorker[ClaimService], Depends(get_hot_claims)]
HotTransitionsDep = Annotated[InWorker[JobTransitionService], Depends(get_hot_transitions)]
