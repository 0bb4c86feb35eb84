"""Job relationships (dependencies, files, user data): bulk reads and writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcFile,
    TorcJob,
    TorcJobDependency,
    TorcJobFile,
    TorcJobUserData,
    TorcResourceRequirements,
    TorcUserData,
)
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import chunks

REL_FIELDS = (
    "depends_on_job_ids",
    "input_file_ids",
    "output_file_ids",
    "input_user_data_ids",
    "output_user_data_ids",
)


def load_relations(
    session: Session, job_ids: Sequence[int], fields: Iterable[str] = REL_FIELDS
) -> dict[int, dict[str, list[int]]]:
    """Relationship arrays for many jobs at once."""
    fields = set(fields)
    out: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for part in chunks(list(job_ids)):
        if "depends_on_job_ids" in fields:
            for job_id, dep in session.execute(
                select(TorcJobDependency.job_id, TorcJobDependency.depends_on_job_id).where(
                    TorcJobDependency.job_id.in_(part)
                )
            ):
                out[job_id]["depends_on_job_ids"].append(dep)
        for table, column, stem in (
            (TorcJobFile, TorcJobFile.file_id, "file_ids"),
            (TorcJobUserData, TorcJobUserData.user_data_id, "user_data_ids"),
        ):
            for job_id, ref, direction in session.execute(
                select(table.job_id, column, table.direction).where(table.job_id.in_(part))
            ):
                key = f"{'input' if direction == 'in' else 'output'}_{stem}"
                if key in fields:
                    out[job_id][key].append(ref)
    return out


def _existing(
    session: Session, column: Any, workflow_column: Any, ids: set[int], wf: int
) -> set[int]:
    found: set[int] = set()
    for part in chunks(sorted(ids)):
        found.update(session.scalars(select(column).where(column.in_(part), workflow_column == wf)))
    return found


def check_references(session: Session, workflow_id: int, jobs: list[dict[str, Any]]) -> None:
    """Every referenced job, file, user data and requirements id exists in the workflow.

    Raises:
        ValidationFailedError: naming the first unknown id.
    """
    wanted: dict[str, set[int]] = defaultdict(set)
    for job in jobs:
        for key in REL_FIELDS:
            wanted[key].update(job.get(key) or [])
        if job.get("resource_requirements_id") is not None:
            wanted["rr"].add(job["resource_requirements_id"])
    checks = (
        ("depends_on_job_ids", TorcJob.id, TorcJob.workflow_id, "job"),
        ("input_file_ids", TorcFile.id, TorcFile.workflow_id, "file"),
        ("output_file_ids", TorcFile.id, TorcFile.workflow_id, "file"),
        ("input_user_data_ids", TorcUserData.id, TorcUserData.workflow_id, "user data"),
        ("output_user_data_ids", TorcUserData.id, TorcUserData.workflow_id, "user data"),
        (
            "rr",
            TorcResourceRequirements.id,
            TorcResourceRequirements.workflow_id,
            "resource requirements",
        ),
    )
    for key, column, wf_column, label in checks:
        if not wanted[key]:
            continue
        missing = wanted[key] - _existing(session, column, wf_column, wanted[key], workflow_id)
        if missing:
            field = "resource_requirements_id" if key == "rr" else key
            raise ValidationFailedError(
                f"Got {field} containing {sorted(missing)[0]}; no such {label} in workflow "
                f"{workflow_id}",
                code="unknown_reference",
                field=field,
            )


def insert_relations(
    session: Session, workflow_id: int, rows: list[tuple[int, dict[str, Any]]]
) -> None:
    """Write the relationship rows of newly created jobs in bulk."""
    deps, files, user_data = [], [], []
    for job_id, job in rows:
        for dep in set(job.get("depends_on_job_ids") or []):
            deps.append({"job_id": job_id, "depends_on_job_id": dep, "workflow_id": workflow_id})
        for key, direction in (("input_file_ids", "in"), ("output_file_ids", "out")):
            for ref in set(job.get(key) or []):
                files.append(
                    {
                        "job_id": job_id,
                        "file_id": ref,
                        "direction": direction,
                        "workflow_id": workflow_id,
                    }
                )
        for key, direction in (("input_user_data_ids", "in"), ("output_user_data_ids", "out")):
            for ref in set(job.get(key) or []):
                user_data.append(
                    {
                        "job_id": job_id,
                        "user_data_id": ref,
                        "direction": direction,
                        "workflow_id": workflow_id,
                    }
                )
    for table, values in (
        (TorcJobDependency, deps),
        (TorcJobFile, files),
        (TorcJobUserData, user_data),
    ):
        if values:
            session.execute(insert(table), values)
