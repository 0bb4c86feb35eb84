"""Torc workflow actions: create, list, pending, claim; trigger counting and re-arming.

An action fires when its trigger has been seen ``required_triggers`` times
(``trigger_count >= required_triggers``) and is then claimed by one worker (or by every worker
when ``persistent``). Job triggers count the gating jobs that satisfy them, recomputed from the
jobs' statuses whenever statuses move (initialize, completion and unblocking); the server never
runs an action itself: the Ray runner executes ``run_commands``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import TorcJob, TorcWorkflowAction
from control_plane.errors import InvalidStateError, NotFoundError, ValidationFailedError
from control_plane.schemas.torc.status import JobStatus
from control_plane.services.torc.common import get_workflow_or_raise, now_iso
from control_plane.services.torc.state_machine import DONE_FOR_WORKFLOW, FINISHED
from control_plane.services.torc.txn import is_sqlite

S = JobStatus
TRIGGERS = (
    "on_workflow_start",
    "on_workflow_complete",
    "on_worker_start",
    "on_worker_complete",
    "on_jobs_ready",
    "on_jobs_complete",
)
JOB_TRIGGERS = {
    "on_jobs_ready": FINISHED | {S.READY},
    "on_jobs_complete": FINISHED,
}
"""The statuses that satisfy each job trigger."""
_SCHEDULE_KEYS = {
    "scheduler_id": int,
    "scheduler_type": str,
    "num_allocations": int,
    "start_one_worker_per_node": bool,
    "max_parallel_jobs": int,
}


def _invalid(message: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Invalid action_config: {message}", code="invalid_action_config", field="action_config"
    )


def check_config(action_type: str, config: Any) -> None:
    """Torc's checks of ``run_commands`` and ``schedule_nodes`` configs (others are free).

    Raises:
        ValidationFailedError: ``Invalid action_config: ...``.
    """
    if action_type == "run_commands":
        commands = config.get("commands") if isinstance(config, dict) else None
        if (
            not isinstance(config, dict)
            or set(config) != {"commands"}
            or not isinstance(commands, list)
            or not commands
            or not all(isinstance(c, str) and c.strip() for c in commands)
        ):
            raise _invalid('run_commands takes exactly {"commands": [non-empty strings]}')
    elif action_type == "schedule_nodes":
        if not isinstance(config, dict):
            raise _invalid("schedule_nodes takes an object")
        for key, value in config.items():
            kind = _SCHEDULE_KEYS.get(key)
            if kind is None:
                raise _invalid(f"unknown schedule_nodes key '{key}'")
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise _invalid(f"schedule_nodes {key} must be {kind.__name__}")


def action_dict(row: TorcWorkflowAction) -> dict[str, Any]:
    """The wire form of an action (``WorkflowActionModel``)."""
    body: dict[str, Any] = {
        "id": row.id,
        "workflow_id": row.workflow_id,
        "trigger_type": row.trigger_type,
        "action_type": row.action_type,
        "action_config": json.loads(row.action_config) if row.action_config else None,
        "trigger_count": row.trigger_count,
        "required_triggers": row.required_triggers,
        "executed": row.executed,
        "persistent": row.persistent,
        "is_recovery": row.is_recovery,
    }
    if row.job_ids:
        body["job_ids"] = json.loads(row.job_ids)
    if row.executed_at:
        body["executed_at"] = row.executed_at
    if row.executed_by is not None:
        body["executed_by"] = row.executed_by
    return body


def _satisfied(row: TorcWorkflowAction, statuses: Mapping[int, str]) -> int:
    """How many triggers a job action has seen, given the jobs' statuses."""
    ok = JOB_TRIGGERS[row.trigger_type]
    if row.job_ids:
        return sum(1 for j in json.loads(row.job_ids) if statuses.get(j) in ok)
    # No job list: one trigger once every job of the workflow satisfies it.
    return int(bool(statuses) and all(s in ok for s in statuses.values()))


def refresh_triggers(session: Session, workflow_id: int) -> None:
    """Count job triggers (and ``on_workflow_complete``) from the jobs' current statuses.

    Called inside the caller's transaction after statuses moved; counts never go down (only
    ``initialize_jobs`` re-arms).
    """
    query = select(TorcWorkflowAction).where(
        TorcWorkflowAction.workflow_id == workflow_id,
        TorcWorkflowAction.trigger_type.in_([*JOB_TRIGGERS, "on_workflow_complete"]),
        TorcWorkflowAction.trigger_count < TorcWorkflowAction.required_triggers,
    )
    if not is_sqlite(session):
        # Two completions at once: the second waits here for the first to commit, so its
        # read of the statuses below (READ COMMITTED, a new statement) sees both jobs.
        query = query.with_for_update()
    rows = list(session.scalars(query))
    if not rows:
        return
    statuses = dict(
        session.execute(
            select(TorcJob.id, TorcJob.status).where(TorcJob.workflow_id == workflow_id)
        ).all()
    )
    for row in rows:
        if row.trigger_type == "on_workflow_complete":
            count = int(all(s in DONE_FOR_WORKFLOW for s in statuses.values()))
        else:
            count = _satisfied(row, statuses)
        row.trigger_count = max(row.trigger_count, min(count, row.required_triggers))


def rearm_actions(
    session: Session, workflow_id: int, statuses: Mapping[int, str], *, only_uninitialized: bool
) -> None:
    """Re-arm actions inside ``initialize_jobs`` and fire the start triggers.

    Recovery actions are deleted. A full initialize re-arms everything. A partial one
    (``only_uninitialized``) keeps an executed ``on_workflow_start``, and keeps a job action
    whose gating jobs are all finished; everything else is re-armed. Then
    ``on_workflow_start`` and the worker triggers count once, job triggers count the jobs that
    satisfy them.
    """
    session.execute(
        delete(TorcWorkflowAction).where(
            TorcWorkflowAction.workflow_id == workflow_id, TorcWorkflowAction.is_recovery.is_(True)
        )
    )
    rows = list(
        session.scalars(
            select(TorcWorkflowAction).where(TorcWorkflowAction.workflow_id == workflow_id)
        )
    )
    for row in rows:
        keep = False
        if only_uninitialized:
            if row.trigger_type == "on_workflow_start":
                keep = row.executed
            elif row.trigger_type in JOB_TRIGGERS:
                gating = json.loads(row.job_ids) if row.job_ids else list(statuses)
                keep = bool(gating) and all(statuses.get(j) in FINISHED for j in gating)
        if not keep:
            row.executed = False
            row.executed_at = None
            row.executed_by = None
            row.trigger_count = 0
        if row.trigger_type in JOB_TRIGGERS:
            row.trigger_count = max(
                row.trigger_count, min(_satisfied(row, statuses), row.required_triggers)
            )
        elif row.trigger_type != "on_workflow_complete":
            row.trigger_count = row.required_triggers


class WorkflowActionService:
    """``/workflows/{id}/actions``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, workflow_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Create an action after checking its trigger, config and jobs.

        Raises:
            ValidationFailedError: unknown trigger, bad config, unknown job ids.
            NotFoundError: unknown workflow.
        """
        get_workflow_or_raise(self.session, workflow_id)
        trigger = data.get("trigger_type")
        if trigger not in TRIGGERS:
            raise ValidationFailedError(
                f"Got trigger_type '{trigger}'; expected one of {', '.join(TRIGGERS)}",
                code="invalid_trigger_type",
                field="trigger_type",
            )
        action_type = data.get("action_type")
        if not action_type:
            raise ValidationFailedError("Got no action_type", code="missing_field")
        config = data.get("action_config")
        check_config(action_type, config)
        job_ids = sorted(set(data.get("job_ids") or []))
        if job_ids:
            found = set(
                self.session.scalars(
                    select(TorcJob.id).where(
                        TorcJob.workflow_id == workflow_id, TorcJob.id.in_(job_ids)
                    )
                )
            )
            missing = sorted(set(job_ids) - found)
            if missing:
                raise ValidationFailedError(
                    f"Got job_ids containing {missing[0]}; no such job in workflow {workflow_id}",
                    code="unknown_reference",
                    field="job_ids",
                )
        required = len(job_ids) if trigger in JOB_TRIGGERS and job_ids else 1
        row = TorcWorkflowAction(
            workflow_id=workflow_id,
            trigger_type=trigger,
            action_type=action_type,
            action_config=json.dumps(config) if config is not None else None,
            job_ids=json.dumps(job_ids) if job_ids else None,
            trigger_count=0,
            required_triggers=required,
            executed=False,
            persistent=bool(data.get("persistent")),
            is_recovery=bool(data.get("is_recovery")),
        )
        self.session.add(row)
        self.session.flush()
        refresh_triggers(self.session, workflow_id)
        self.session.commit()
        return action_dict(row)

    def list(
        self, workflow_id: int, trigger_types: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every action of the workflow, by id."""
        get_workflow_or_raise(self.session, workflow_id)
        query = select(TorcWorkflowAction).where(TorcWorkflowAction.workflow_id == workflow_id)
        if trigger_types:
            query = query.where(TorcWorkflowAction.trigger_type.in_(trigger_types))
        return [action_dict(r) for r in self.session.scalars(query.order_by(TorcWorkflowAction.id))]

    def pending(
        self, workflow_id: int, trigger_types: builtins.list[str] | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Actions whose trigger fired and that are not executed (persistent: always)."""
        return [
            a
            for a in self.list(workflow_id, trigger_types)
            if a["trigger_count"] >= a["required_triggers"]
            and (a["persistent"] or not a["executed"])
        ]

    def claim(
        self, workflow_id: int, action_id: int, compute_node_id: int | None
    ) -> dict[str, Any]:
        """Claim a pending action for one worker (a persistent one for every worker).

        Raises:
            NotFoundError: no such action in the workflow.
            InvalidStateError: already claimed (non-persistent), or its trigger has not fired.
        """
        row = self.session.get(TorcWorkflowAction, action_id)
        if row is None or row.workflow_id != workflow_id:
            raise NotFoundError(
                f"Action not found with ID: {action_id} in workflow {workflow_id}",
                code="action_not_found",
            )
        if row.trigger_count < row.required_triggers:
            raise InvalidStateError(
                f"Action {action_id} is not pending: trigger {row.trigger_type} seen "
                f"{row.trigger_count} of {row.required_triggers} times",
                code="action_not_pending",
                claimed=False,
            )
        stamp = now_iso()
        if row.persistent:
            row.executed_at = stamp
        else:
            # Conditional: of two workers claiming at once, exactly one updates the row.
            claimed = self.session.execute(
                update(TorcWorkflowAction)
                .where(TorcWorkflowAction.id == action_id, TorcWorkflowAction.executed.is_(False))
                .values(executed=True, executed_at=stamp, executed_by=compute_node_id)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                self.session.rollback()
                raise InvalidStateError(
                    f"Action {action_id} already claimed", code="action_claimed", claimed=False
                )
        self.session.commit()
        return {"claimed": True, "success": True, "action_id": action_id}
