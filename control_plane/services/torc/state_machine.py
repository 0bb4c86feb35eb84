"""Torc's job state machine: one table of which event moves which statuses to which.

Every service decides and validates job status changes through ``TRANSITIONS`` (directly or via
the helpers below); docs/torc.md shows the same table, rendered by ``markdown_table()`` and
checked by ``tests/unit/torc/test_torc_state_machine.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from control_plane.errors import ValidationFailedError
from control_plane.schemas.torc.status import JobStatus

S = JobStatus
ALL: frozenset[JobStatus] = frozenset(JobStatus)
FINISHED: frozenset[JobStatus] = frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.TERMINATED})
"""What dependents wait for (torc's ``is_complete()``)."""
FAILURES: frozenset[JobStatus] = frozenset({S.FAILED, S.CANCELED, S.TERMINATED})
"""Finished without success: a dependency in one of these (with a non-zero return code, or
canceled) cancels dependents that have ``cancel_on_blocking_job_failure``."""
TERMINAL: frozenset[JobStatus] = FINISHED | {S.PENDING_FAILED}
"""What ``complete_job`` accepts (and what a result's status may be)."""
ACTIVE: frozenset[JobStatus] = frozenset({S.PENDING, S.RUNNING})
"""Held by a runner: canceled with the workflow, and blocking ``reset_status``."""
DONE_FOR_WORKFLOW: frozenset[JobStatus] = FINISHED | {S.DISABLED}
"""A workflow is complete when every job is in one of these."""
UNSTARTED_FOR_WORKFLOW: frozenset[JobStatus] = frozenset({S.UNINITIALIZED, S.DISABLED})
"""A workflow is uninitialized when every job is in one of these."""
INITIAL: JobStatus = S.UNINITIALIZED
"""The status of a new job."""
FINISHED_LABEL = "finished"
"""``from_status`` of the event recorded for a dependent reset by ``dependency_reopened``."""


class JobEvent(StrEnum):
    """What moves a job: an endpoint call or a rule applied by one."""

    INITIALIZE_UPSTREAM = "initialize_upstream"
    INITIALIZE_BLOCKED = "initialize_blocked"
    INITIALIZE_READY = "initialize_ready"
    CLAIM = "claim"
    START = "start"
    COMPLETE = "complete"
    DEPENDENCIES_FINISHED = "dependencies_finished"
    DEPENDENCY_FAILED = "dependency_failed"
    CANCEL = "cancel"
    RETRY = "retry"
    STATUS_CHANGE = "status_change"
    DEPENDENCY_REOPENED = "dependency_reopened"
    RESET = "reset"
    RESET_FAILED = "reset_failed"
    INPUTS_CHANGED = "inputs_changed"
    DISABLE = "disable"


@dataclass(frozen=True)
class Transition:
    """The statuses an event applies to and those it may lead to.

    Attributes:
        sources: statuses the event moves a job from (others: refused, or left alone by the
            bulk passes of ``initialize_jobs``).
        targets: statuses it may move a job to; several when the caller names the target.
        trigger: the endpoint or rule that fires the event (for the docs).
    """

    sources: frozenset[JobStatus]
    targets: frozenset[JobStatus]
    trigger: str


def _t(sources: Iterable[JobStatus], targets: Iterable[JobStatus], trigger: str) -> Transition:
    return Transition(frozenset(sources), frozenset(targets), trigger)


E = JobEvent
TRANSITIONS: Mapping[JobEvent, Transition] = MappingProxyType(
    {
        E.INITIALIZE_UPSTREAM: _t(
            ALL - {S.DISABLED},
            {S.UNINITIALIZED},
            "`initialize_jobs?only_uninitialized=true`: downstream of an uninitialized job",
        ),
        E.INITIALIZE_BLOCKED: _t(
            ALL - {S.DISABLED},
            {S.BLOCKED},
            "`initialize_jobs`: a dependency is not finished (only uninitialized jobs "
            "with `only_uninitialized`)",
        ),
        E.INITIALIZE_READY: _t(
            {S.UNINITIALIZED, S.PENDING, S.RUNNING, S.TERMINATED, S.PENDING_FAILED},
            {S.READY},
            "`initialize_jobs`: after the blocked pass",
        ),
        E.CLAIM: _t({S.READY}, {S.PENDING}, "`claim_next_jobs`, `claim_jobs_based_on_resources`"),
        E.START: _t({S.PENDING}, {S.RUNNING}, "`start_job`"),
        E.COMPLETE: _t(
            ALL - FINISHED,
            TERMINAL,
            "`complete_job/{status}`, `batch_complete_jobs` (the caller names the status)",
        ),
        E.DEPENDENCIES_FINISHED: _t(
            {S.BLOCKED},
            {S.READY},
            "a completion finished the last unfinished dependency, none failed (or no "
            "`cancel_on_blocking_job_failure`)",
        ),
        E.DEPENDENCY_FAILED: _t(
            {S.BLOCKED},
            {S.CANCELED},
            "as above, a dependency failed and the job has `cancel_on_blocking_job_failure` "
            "(cascades)",
        ),
        E.CANCEL: _t(ACTIVE, {S.CANCELED}, "`workflows/{id}/cancel`"),
        E.RETRY: _t(
            {S.RUNNING, S.FAILED, S.TERMINATED, S.PENDING_FAILED},
            {S.READY},
            "`retry/{run_id}` (`attempt_id + 1`)",
        ),
        E.STATUS_CHANGE: _t(
            ALL, ALL - FINISHED, "`manage_status_change/{status}` (the caller names the status)"
        ),
        E.DEPENDENCY_REOPENED: _t(
            {S.COMPLETED, S.FAILED},
            {S.UNINITIALIZED},
            "`manage_status_change` of a direct dependency from finished to uninitialized",
        ),
        E.RESET: _t(
            ALL - {S.UNINITIALIZED},
            {S.UNINITIALIZED},
            "`reset_job_status` (with `failed_only`: the failed jobs and all their downstream)",
        ),
        E.RESET_FAILED: _t(
            FAILURES | {S.PENDING_FAILED},
            {S.UNINITIALIZED},
            "`reset_job_status?failed_only=true`: the jobs it starts from",
        ),
        E.INPUTS_CHANGED: _t(
            ALL, {S.UNINITIALIZED}, "`process_changed_job_inputs`: the job's input hash changed"
        ),
        E.DISABLE: _t({S.UNINITIALIZED}, {S.DISABLED}, "`PUT /jobs/{id}` with `status`"),
    }
)


def sources(event: JobEvent) -> frozenset[JobStatus]:
    """The statuses ``event`` applies to."""
    return TRANSITIONS[event].sources


def targets(event: JobEvent) -> frozenset[JobStatus]:
    """The statuses ``event`` may lead to."""
    return TRANSITIONS[event].targets


def target(event: JobEvent) -> JobStatus:
    """The one status a single-target event leads to."""
    (only,) = TRANSITIONS[event].targets
    return only


def source(event: JobEvent) -> JobStatus:
    """The one status a single-source event applies to."""
    (only,) = TRANSITIONS[event].sources
    return only


def can(event: JobEvent, status: str) -> bool:
    """Whether ``event`` applies to a job in ``status``."""
    return status in TRANSITIONS[event].sources


def allowed(event: JobEvent, old: str, new: str) -> bool:
    """Whether ``event`` may move a job from ``old`` to ``new``."""
    rule = TRANSITIONS[event]
    return old in rule.sources and new in rule.targets


def step(event: JobEvent, status: JobStatus) -> JobStatus:
    """The status after a single-target ``event`` (unchanged when it does not apply)."""
    return target(event) if can(event, status) else status


def parse_status(value: str) -> JobStatus:
    """A job status from its wire string.

    Raises:
        ValidationFailedError: not one of torc's job statuses.
    """
    try:
        return JobStatus(value)
    except ValueError:
        raise ValidationFailedError(
            f"Got status '{value}'; expected one of {', '.join(JobStatus)}",
            code="invalid_status",
        ) from None


def _statuses(group: frozenset[JobStatus]) -> str:
    if group == ALL:
        return "any"
    ordered = [s for s in JobStatus if s in group]
    rest = [s for s in JobStatus if s not in group]
    if len(rest) < len(ordered) and len(rest) <= 4:
        return "any but " + ", ".join(f"`{s}`" for s in rest)
    return ", ".join(f"`{s}`" for s in ordered)


def markdown_table() -> str:
    """The transition table as the markdown table in docs/torc.md."""
    lines = ["| event | from | to | fired by |", "|---|---|---|---|"]
    for event, rule in TRANSITIONS.items():
        lines.append(
            f"| `{event}` | {_statuses(rule.sources)} | {_statuses(rule.targets)} "
            f"| {rule.trigger} |"
        )
    return "\n".join(lines)


__all__ = [
    "ACTIVE",
    "DONE_FOR_WORKFLOW",
    "FAILURES",
    "FINISHED",
    "INITIAL",
    "TERMINAL",
    "TRANSITIONS",
    "UNSTARTED_FOR_WORKFLOW",
    "JobEvent",
    "JobStatus",
    "Transition",
    "allowed",
    "can",
    "markdown_table",
    "parse_status",
    "source",
    "sources",
    "step",
    "target",
    "targets",
]
