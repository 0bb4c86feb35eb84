"""``/workflows/{id}/actions``: workflow actions (create, list, pending, claim)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query

from control_plane.api.torc.deps import WorkflowActionServiceDep
from control_plane.api.torc.routing import torc_router
from control_plane.schemas.common import Id64
from control_plane.schemas.torc.actions import (
    ClaimActionRead,
    ClaimActionRequest,
    WorkflowActionCreate,
    WorkflowActionRead,
)

router = torc_router("torc workflow actions")
TriggerTypes = Annotated[
    list[str] | None, Query(description="Only these trigger types (repeatable).")
]


@router.post("/workflows/{workflow_id}/actions", response_model=WorkflowActionRead)
def create_workflow_action(
    workflow_id: Id64, body: WorkflowActionCreate, actions: WorkflowActionServiceDep
) -> dict[str, Any]:
    """Create a workflow action."""
    return actions.create(workflow_id, body.model_dump())


@router.get("/workflows/{workflow_id}/actions", response_model=list[WorkflowActionRead])
def list_workflow_actions(
    workflow_id: Id64, actions: WorkflowActionServiceDep
) -> list[dict[str, Any]]:
    """List a workflow's actions (a bare JSON array, as torc answers)."""
    return actions.list(workflow_id)


@router.get("/workflows/{workflow_id}/actions/pending", response_model=list[WorkflowActionRead])
def list_pending_actions(
    workflow_id: Id64, actions: WorkflowActionServiceDep, trigger_type: TriggerTypes = None
) -> list[dict[str, Any]]:
    """Actions whose trigger fired and that wait to be claimed."""
    return actions.pending(workflow_id, trigger_type)


@router.post(
    "/workflows/{workflow_id}/actions/{action_id}/claim",
    response_model=ClaimActionRead,
    responses={409: {"description": "Already claimed, or not pending."}},
)
def claim_action(
    workflow_id: Id64,
    action_id: Id64,
    actions: WorkflowActionServiceDep,
    body: Annotated[ClaimActionRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Claim a pending action (409 when another worker has it)."""
    return actions.claim(workflow_id, action_id, body.compute_node_id if body else None)
