"""Torc user data: JSON documents jobs consume and produce."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from control_plane.db.tables.torc import TorcJob, TorcJobUserData, TorcUserData
from control_plane.errors import NotFoundError
from control_plane.services.torc.crud import TorcCrud


class UserDataService(TorcCrud):
    """CRUD for ``/user_data`` (``PUT`` keeps the old data when ``data`` is null)."""

    table = TorcUserData
    label = "User data"
    list_key = "user_data"
    fields = ("id", "workflow_id", "is_ephemeral", "name", "data")

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """Null fields keep their value on update."""
        if row is None:
            return data
        return {k: v for k, v in data.items() if v is not None}

    def create_linked(
        self,
        data: dict[str, Any],
        *,
        consumer_job_id: int | None = None,
        producer_job_id: int | None = None,
    ) -> dict[str, Any]:
        """Create user data and optionally link it as a job's input or output."""
        for job_id in (consumer_job_id, producer_job_id):
            if job_id is not None and self.session.get(TorcJob, job_id) is None:
                raise NotFoundError(f"Job not found with ID: {job_id}", code="job_not_found")
        self._links = [(consumer_job_id, "in"), (producer_job_id, "out")]
        try:
            return self.create(data)
        finally:
            self._links = []

    def after_create(self, row: Any, data: dict[str, Any]) -> None:  # noqa: ARG002 - hook
        """Record the job links asked for by ``create_linked``."""
        for job_id, direction in getattr(self, "_links", []):
            if job_id is not None:
                self.session.add(
                    TorcJobUserData(
                        job_id=job_id,
                        user_data_id=row.id,
                        direction=direction,
                        workflow_id=row.workflow_id,
                    )
                )

    def list_user_data(
        self,
        workflow_id: int,
        *,
        consumer_job_id: int | None = None,
        producer_job_id: int | None = None,
        name: str | None = None,
        is_ephemeral: bool | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        """User data of a workflow, filtered like torc's ``GET /user_data``."""
        where: list[ColumnElement[bool]] = []
        for job_id, direction in ((consumer_job_id, "in"), (producer_job_id, "out")):
            if job_id is not None:
                where.append(
                    TorcUserData.id.in_(
                        select(TorcJobUserData.user_data_id).where(
                            TorcJobUserData.job_id == job_id, TorcJobUserData.direction == direction
                        )
                    )
                )
        if name is not None:
            where.append(TorcUserData.name == name)
        if is_ephemeral is not None:
            where.append(TorcUserData.is_ephemeral == is_ephemeral)
        return self.list(workflow_id, where=where, **page)
