"""Read-only queries over every surface's tables, for metrics and the status view."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.db.tables.serve_apps import ServeAppRecord
from control_plane.db.tables.torc import TorcJob, TorcResult, TorcWorkflow


@dataclass
class JobCounts:
    """Torc job numbers per workflow (the newest ones) and over every workflow."""

    by_status: dict[tuple[int, str], int] = field(default_factory=dict)
    results: dict[tuple[int, str], tuple[int, float]] = field(default_factory=dict)
    all_by_status: dict[str, int] = field(default_factory=dict)
    all_results: dict[str, tuple[int, float]] = field(default_factory=dict)


def serve_apps_by_owner(session: Session) -> dict[str, int]:
    """How many Serve applications each surface wants running."""
    rows = session.execute(
        select(ServeAppRecord.owner, func.count()).group_by(ServeAppRecord.owner)
    )
    return {owner: int(count) for owner, count in rows}


def loaded_model_names(session: Session) -> list[str]:
    """Triton-layout models loaded on the built-in server."""
    return list(session.scalars(select(RegisteredModel.name).where(RegisteredModel.loaded)))


def registered_model_count(session: Session) -> int:
    """Models in the registry (loaded or not)."""
    return int(session.scalar(select(func.count()).select_from(RegisteredModel)) or 0)


def job_counts(session: Session, newest: int = 100) -> JobCounts:
    """Jobs and results by status: per workflow for the ``newest`` workflows, and in all."""
    counts = JobCounts()
    recent = select(TorcWorkflow.id).order_by(TorcWorkflow.id.desc()).limit(newest).subquery()
    rows = session.execute(
        select(TorcJob.workflow_id, TorcJob.status, func.count())
        .where(TorcJob.workflow_id.in_(select(recent.c.id)))
        .group_by(TorcJob.workflow_id, TorcJob.status)
    )
    counts.by_status = {(int(w), str(s)): int(n) for w, s, n in rows}
    totals = session.execute(select(TorcJob.status, func.count()).group_by(TorcJob.status))
    counts.all_by_status = {str(s): int(n) for s, n in totals}
    minutes = func.sum(TorcResult.exec_time_minutes)
    rows = session.execute(
        select(TorcResult.workflow_id, TorcResult.status, func.count(), minutes)
        .where(TorcResult.workflow_id.in_(select(recent.c.id)))
        .group_by(TorcResult.workflow_id, TorcResult.status)
    )
    counts.results = {
        (int(r[0]), str(r[1])): (int(r[2]), float(r[3] or 0.0) * 60.0)  # type: ignore[misc]
        for r in rows
    }
    done = session.execute(
        select(TorcResult.status, func.count(), minutes).group_by(TorcResult.status)
    )
    counts.all_results = {str(r[0]): (int(r[1]), float(r[2] or 0.0) * 60.0) for r in done}
    return counts
