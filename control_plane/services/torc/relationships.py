"""Read-only views of a workflow's graph (API 0.21).

Dependency and data-flow listings, missing inputs, the requirements of ready jobs and the
running jobs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from control_plane.db.tables.torc import (
    TorcComputeNode,
    TorcFile,
    TorcJob,
    TorcJobDependency,
    TorcJobFile,
    TorcJobUserData,
    TorcResourceRequirements,
    TorcUserData,
)
from control_plane.errors import ValidationFailedError
from control_plane.schemas.torc.status import JobStatus
from control_plane.services.torc.common import check_limit, envelope, get_workflow_or_raise


def page_of(
    items: list[dict[str, Any]],
    key: str,
    *,
    offset: int = 0,
    limit: int | None = None,
    sort_by: str | None = None,
    reverse_sort: bool = False,
    columns: tuple[str, ...],
    default_sort: tuple[str, ...],
) -> dict[str, Any]:
    """Sort and page computed rows with torc's list rules.

    Raises:
        ValidationFailedError: an unknown ``sort_by`` or a bad page.
    """
    size = check_limit(offset, limit)
    if sort_by is not None and sort_by not in columns:
        raise ValidationFailedError(
            f"Got sort_by '{sort_by}'; not a column", code="invalid_sort_by"
        )
    order = (sort_by, *default_sort) if sort_by else default_sort

    def sort_key(item: dict[str, Any]) -> tuple[Any, ...]:
        # None sorts first; mixed None/values compare through the flag.
        return tuple((item.get(c) is not None, item.get(c) or 0) for c in order)

    ordered = sorted(items, key=sort_key, reverse=reverse_sort)
    return envelope(ordered[offset : offset + size], offset, len(items), key)


def _runtime_iso(seconds: float) -> str:
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


class WorkflowGraphService:
    """Listings computed from jobs, their relationships and their requirements."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _names(self, workflow_id: int) -> dict[int, str]:
        get_workflow_or_raise(self.session, workflow_id)
        return dict(
            self.session.execute(
                select(TorcJob.id, TorcJob.name).where(TorcJob.workflow_id == workflow_id)
            ).all()
        )

    def job_dependencies(self, workflow_id: int, **page: Any) -> dict[str, Any]:
        """Every dependency edge (explicit, and implicit once initialized), with job names."""
        names = self._names(workflow_id)
        items = [
            {
                "job_id": job_id,
                "job_name": names.get(job_id, ""),
                "depends_on_job_id": dep,
                "depends_on_job_name": names.get(dep, ""),
                "workflow_id": workflow_id,
            }
            for job_id, dep in self.session.execute(
                select(TorcJobDependency.job_id, TorcJobDependency.depends_on_job_id).where(
                    TorcJobDependency.workflow_id == workflow_id
                )
            ).all()
        ]
        return page_of(
            items,
            "job_dependencies",
            columns=tuple(items[0]) if items else ("job_id", "depends_on_job_id"),
            default_sort=("job_id", "depends_on_job_id"),
            **page,
        )

    def _flows(
        self, workflow_id: int, link: Any, column: Any, refs: list[tuple[int, dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        names = self._names(workflow_id)
        producers: dict[int, list[int]] = defaultdict(list)
        consumers: dict[int, list[int]] = defaultdict(list)
        for job_id, ref, direction in self.session.execute(
            select(link.job_id, column, link.direction).where(link.workflow_id == workflow_id)
        ).all():
            (producers if direction == "out" else consumers)[ref].append(job_id)
        items = []
        for ref, fields in refs:
            made_by: list[int | None] = [*sorted(producers.get(ref, []))] or [None]
            used_by: list[int | None] = [*sorted(consumers.get(ref, []))] or [None]
            if made_by == [None] and used_by == [None]:
                continue
            for producer in made_by:
                for consumer in used_by:
                    item = {**fields, "workflow_id": workflow_id}
                    if producer is not None:
                        item["producer_job_id"] = producer
                        item["producer_job_name"] = names.get(producer, "")
                    if consumer is not None:
                        item["consumer_job_id"] = consumer
                        item["consumer_job_name"] = names.get(consumer, "")
                    items.append(item)
        return items

    def job_file_relationships(self, workflow_id: int, **page: Any) -> dict[str, Any]:
        """One row per (producer, consumer) of each file; files nobody uses are left out."""
        files = [
            (f.id, {"file_id": f.id, "file_name": f.name, "file_path": f.path})
            for f in self.session.scalars(
                select(TorcFile).where(TorcFile.workflow_id == workflow_id).order_by(TorcFile.id)
            )
        ]
        items = self._flows(workflow_id, TorcJobFile, TorcJobFile.file_id, files)
        return page_of(
            items,
            "job_file_relationships",
            columns=(
                "file_id",
                "file_name",
                "file_path",
                "producer_job_id",
                "producer_job_name",
                "consumer_job_id",
                "consumer_job_name",
                "workflow_id",
            ),
            default_sort=("file_id", "producer_job_id", "consumer_job_id"),
            **page,
        )

    def job_user_data_relationships(self, workflow_id: int, **page: Any) -> dict[str, Any]:
        """One row per (producer, consumer) of each user data document."""
        docs = [
            (u.id, {"user_data_id": u.id, "user_data_name": u.name})
            for u in self.session.scalars(
                select(TorcUserData)
                .where(TorcUserData.workflow_id == workflow_id)
                .order_by(TorcUserData.id)
            )
        ]
        items = self._flows(workflow_id, TorcJobUserData, TorcJobUserData.user_data_id, docs)
        return page_of(
            items,
            "job_user_data_relationships",
            columns=(
                "user_data_id",
                "user_data_name",
                "producer_job_id",
                "producer_job_name",
                "consumer_job_id",
                "consumer_job_name",
                "workflow_id",
            ),
            default_sort=("user_data_id", "producer_job_id", "consumer_job_id"),
            **page,
        )

    def _links(self, workflow_id: int, link: Any, column: Any) -> tuple[dict[int, set[int]], ...]:
        producers: dict[int, set[int]] = defaultdict(set)
        consumers: dict[int, set[int]] = defaultdict(set)
        for job_id, ref, direction in self.session.execute(
            select(link.job_id, column, link.direction).where(link.workflow_id == workflow_id)
        ).all():
            (producers if direction == "out" else consumers)[ref].add(job_id)
        return producers, consumers

    def _completed(self, workflow_id: int) -> set[int]:
        return set(
            self.session.scalars(
                select(TorcJob.id).where(
                    TorcJob.workflow_id == workflow_id, TorcJob.status == JobStatus.COMPLETED
                )
            )
        )

    def missing_user_data(self, workflow_id: int) -> dict[str, Any]:
        """User data without data that jobs need.

        Consumed and never produced, or the output of a completed job.
        """
        get_workflow_or_raise(self.session, workflow_id)
        producers, consumers = self._links(
            workflow_id, TorcJobUserData, TorcJobUserData.user_data_id
        )
        completed = self._completed(workflow_id)
        empty = self.session.scalars(
            select(TorcUserData.id)
            .where(TorcUserData.workflow_id == workflow_id, TorcUserData.data.is_(None))
            .order_by(TorcUserData.id)
        )
        missing = [
            ud
            for ud in empty
            if (ud in consumers and ud not in producers) or (producers.get(ud, set()) & completed)
        ]
        return {"user_data": missing}

    def required_existing_files(self, workflow_id: int) -> dict[str, Any]:
        """Files that must exist on disk.

        Workflow inputs (consumed, never produced) and the outputs of completed jobs.
        """
        get_workflow_or_raise(self.session, workflow_id)
        producers, consumers = self._links(workflow_id, TorcJobFile, TorcJobFile.file_id)
        completed = self._completed(workflow_id)
        files = sorted(
            {f for f in consumers if f not in producers}
            | {f for f, jobs in producers.items() if jobs & completed}
        )
        return {"files": files}

    def ready_job_requirements(
        self, workflow_id: int, scheduler_config_id: int | None = None
    ) -> dict[str, Any]:
        """What the ready jobs need together (for sizing an allocation)."""
        get_workflow_or_raise(self.session, workflow_id)
        query = (
            select(TorcJob.id, TorcResourceRequirements)
            .join(
                TorcResourceRequirements,
                TorcResourceRequirements.id == TorcJob.resource_requirements_id,
                isouter=True,
            )
            .where(TorcJob.workflow_id == workflow_id, TorcJob.status == JobStatus.READY)
        )
        if scheduler_config_id is not None:
            query = query.where(
                (TorcJob.scheduler_id.is_(None)) | (TorcJob.scheduler_id == scheduler_config_id)
            )
        num_jobs = cpus = gpus = nodes = 0
        memory = runtime = 0.0
        for _, rr in self.session.execute(query).all():
            num_jobs += 1
            cpus += rr.num_cpus if rr else 1
            gpus += rr.num_gpus if rr else 0
            memory += (rr.memory_bytes if rr else 1024 * 1024) / 1024**3
            nodes = max(nodes, rr.num_nodes if rr else 1)
            runtime = max(runtime, rr.runtime_s if rr else 60.0)
        return {
            "num_jobs": num_jobs,
            "num_cpus": cpus,
            "num_gpus": gpus,
            "memory_gb": memory,
            "max_num_nodes": nodes,
            "max_runtime": _runtime_iso(runtime),
        }

    def running_jobs(self, workflow_id: int, **page: Any) -> dict[str, Any]:
        """Running jobs with the compute node each runs on."""
        get_workflow_or_raise(self.session, workflow_id)
        items = []
        for job, node in self.session.execute(
            select(TorcJob, TorcComputeNode)
            .join(
                TorcComputeNode,
                TorcComputeNode.id == TorcJob.active_compute_node_id,
                isouter=True,
            )
            .where(TorcJob.workflow_id == workflow_id, TorcJob.status == JobStatus.RUNNING)
        ).all():
            item: dict[str, Any] = {
                "job_id": job.id,
                "job_name": job.name,
                "compute_node_name": node.hostname if node else "",
                "scheduler_type": node.compute_node_type if node else "",
            }
            if job.start_time:
                item["start_time"] = job.start_time
            items.append(item)
        return page_of(
            items,
            "running_jobs",
            columns=("job_id", "job_name", "compute_node_name", "scheduler_type", "start_time"),
            default_sort=("job_id",),
            **page,
        )
