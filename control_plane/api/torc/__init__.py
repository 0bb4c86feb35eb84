"""Torc job orchestration API, mounted at ``/torc-service/v1``."""

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torc import actions, graph, jobs, misc, resources, workflows

router = GatedRouter(prefix="/torc-service/v1")
for _module in (misc, workflows, graph, actions, jobs, resources):
    router.include_router(_module.router)

__all__ = ["router"]
