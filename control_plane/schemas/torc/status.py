"""Torc's job statuses: the one definition of the wire strings (torc v0.12 ``job_status``).

The transitions between them are in ``control_plane/services/torc/state_machine.py``.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """A job's status as torc clients send and read it (declaration order = torc's ints)."""

    UNINITIALIZED = "uninitialized"
    BLOCKED = "blocked"
    READY = "ready"
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    DISABLED = "disabled"
    PENDING_FAILED = "pending_failed"


class TaskStatus(StrEnum):
    """Where an asynchronous task is (``/tasks/{id}``); not a job status."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
