"""Torc job orchestration services: CRUD per resource and the job state machine."""

from control_plane.services.torc.actions import WorkflowActionService
from control_plane.services.torc.claims import ClaimService
from control_plane.services.torc.compute_nodes import ComputeNodeService
from control_plane.services.torc.events import EventService
from control_plane.services.torc.failure_handlers import FailureHandlerService
from control_plane.services.torc.files import FileService
from control_plane.services.torc.initialize import JobInitializer
from control_plane.services.torc.jobs import JobService
from control_plane.services.torc.relationships import WorkflowGraphService
from control_plane.services.torc.resource_requirements import ResourceRequirementsService
from control_plane.services.torc.results import ResultService
from control_plane.services.torc.runners import RunnerService
from control_plane.services.torc.spawn import SpawnService
from control_plane.services.torc.tasks import TaskService
from control_plane.services.torc.transitions import JobTransitionService
from control_plane.services.torc.user_data import UserDataService
from control_plane.services.torc.workflows import WorkflowService

__all__ = [
    "ClaimService",
    "ComputeNodeService",
    "EventService",
    "FailureHandlerService",
    "FileService",
    "JobInitializer",
    "JobService",
    "JobTransitionService",
    "ResourceRequirementsService",
    "ResultService",
    "RunnerService",
    "SpawnService",
    "TaskService",
    "UserDataService",
    "WorkflowActionService",
    "WorkflowGraphService",
    "WorkflowService",
]
