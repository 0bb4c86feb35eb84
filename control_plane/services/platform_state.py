"""Read-only queries over every surface's tables, for metrics and the status view."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.db.tables.serve_apps import ServeAppRecord
from control_plane.db.tables.torc import TorcJob, TorcResult


@dataclass
class JobCounts:
    """Torc job numbers per workflow."""

    by_status: dict[tuple[int, str], int] = field(default_factory=dict)
    results: dict[tuple[int, str], tuple[int, float]] = field(default_factory=dict)


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


def job_counts(session: Session) -> JobCounts:
    """Jobs by (workflow, status) and results by (workflow, status) with summed run time."""
    counts = JobCounts()
    rows = session.execute(
        select(TorcJob.workflow_id, TorcJob.status, func.count()).group_by(
            TorcJob.workflow_id, TorcJob.status
        )
    )
    counts.by_status = {(int(w), str(s)): int(n) for w, s, n in rows}
    rows = session.execute(
        select(
            TorcResult.workflow_id,
            TorcResult.status,
            func.count(),
            func.sum(TorcResult.exec_time_minutes),
        ).group_by(TorcResult.workflow_id, TorcResult.status)
    )
    counts.results = {
        (int(r[0]), str(r[1])): (int(r[2]), float(r[3] or 0.0) * 60.0)  # type: ignore[misc]
        for r in rows
    }
    return counts
