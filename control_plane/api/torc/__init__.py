"""Torc job orchestration API, mounted at ``/torc-service/v1``."""

from fastapi import APIRouter

from control_plane.api.torc import actions, graph, jobs, misc, resources, workflows

router = APIRouter(prefix="/torc-service/v1")
for _module in (misc, workflows, graph, actions, jobs, resources):
    router.include_router(_module.router)

__all__ = ["router"]
