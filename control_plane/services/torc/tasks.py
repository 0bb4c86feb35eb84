"""Asynchronous workflow operations (API 0.21): ``initialize_jobs?async=true`` and ``/tasks``.

A task row is written ``queued`` and answered at once (202); the operation then runs after the
response on the replica that accepted it, in its own session, and the row records
``running`` → ``succeeded`` or ``failed`` (with the error). While a workflow has a queued or
running task, another initialize (async or not) is refused with 409.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from control_plane.db.session import session_scope
from control_plane.db.tables.torc import TorcTask
from control_plane.errors import DomainError, InvalidStateError, NotFoundError
from control_plane.schemas.torc.status import TaskStatus
from control_plane.services.torc.common import get_workflow_or_raise, now_ms
from control_plane.services.torc.initialize import JobInitializer

logger = logging.getLogger(__name__)
INITIALIZE = "initialize_jobs"
ACTIVE_TASK = (TaskStatus.QUEUED, TaskStatus.RUNNING)


def task_dict(row: TorcTask) -> dict[str, Any]:
    """The wire form of a task (``TaskModel``), nulls omitted."""
    body = {
        "id": row.id,
        "workflow_id": row.workflow_id,
        "operation": row.operation,
        "status": TaskStatus(row.status).value,
        "created_at_ms": row.created_at_ms,
        "started_at_ms": row.started_at_ms,
        "finished_at_ms": row.finished_at_ms,
        "error": row.error,
    }
    return {k: v for k, v in body.items() if v is not None}


class TaskService:
    """``/tasks/{id}``, ``/workflows/{id}/active_task`` and async initialize."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _active(self, workflow_id: int) -> TorcTask | None:
        return self.session.scalar(
            select(TorcTask)
            .where(TorcTask.workflow_id == workflow_id, TorcTask.status.in_(ACTIVE_TASK))
            .order_by(TorcTask.id)
            .limit(1)
        )

    def check_idle(self, workflow_id: int) -> None:
        """Refuse work on a workflow that has an active task.

        Raises:
            InvalidStateError: 409 naming the active task.
        """
        active = self._active(workflow_id)
        if active is not None:
            raise InvalidStateError(
                f"Workflow {workflow_id} has an active task {active.id} ({active.operation})",
                code="task_active",
                existing_task_id=active.id,
                existing_operation=active.operation,
            )

    def create_initialize(self, workflow_id: int) -> dict[str, Any]:
        """Record a queued ``initialize_jobs`` task.

        Raises:
            NotFoundError: unknown workflow.
            InvalidStateError: a task is active.
        """
        get_workflow_or_raise(self.session, workflow_id)
        self.check_idle(workflow_id)
        row = TorcTask(
            workflow_id=workflow_id,
            operation=INITIALIZE,
            status=TaskStatus.QUEUED,
            created_at_ms=now_ms(),
        )
        self.session.add(row)
        self.session.commit()
        return task_dict(row)

    def get(self, task_id: int) -> dict[str, Any]:
        """One task.

        Raises:
            NotFoundError: unknown id.
        """
        row = self.session.get(TorcTask, task_id)
        if row is None:
            raise NotFoundError(f"Task not found with ID: {task_id}", code="task_not_found")
        return task_dict(row)

    def active(self, workflow_id: int) -> dict[str, Any]:
        """``{"task": <the active task or null>}``."""
        get_workflow_or_raise(self.session, workflow_id)
        row = self._active(workflow_id)
        return {"task": task_dict(row) if row is not None else None}


def run_initialize_task(
    factory: sessionmaker[Session], task_id: int, *, only_uninitialized: bool
) -> None:
    """Run a queued initialize task to its end (called after the 202 was sent)."""
    with session_scope(factory) as session:
        task = session.get(TorcTask, task_id)
        if task is None:
            return
        task.status, task.started_at_ms = TaskStatus.RUNNING, now_ms()
        workflow_id = task.workflow_id
        session.commit()
    status, error = TaskStatus.SUCCEEDED, None
    try:
        with session_scope(factory) as session:
            JobInitializer(session).initialize(workflow_id, only_uninitialized=only_uninitialized)
    except DomainError as exc:
        status, error = TaskStatus.FAILED, exc.message
    except Exception as exc:  # the task records any failure; the log has the traceback
        logger.exception("initialize task %s failed", task_id)
        status, error = TaskStatus.FAILED, f"{type(exc).__name__}: {exc}"
    with session_scope(factory) as session:
        task = session.get(TorcTask, task_id)
        if task is not None:
            task.status, task.finished_at_ms, task.error = status, now_ms(), error
            session.commit()
