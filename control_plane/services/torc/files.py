"""Torc files: paths jobs read and write (``st_mtime`` is kept by clients)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from control_plane.db.tables.torc import TorcFile, TorcJobFile
from control_plane.services.torc.crud import TorcCrud


class FileService(TorcCrud):
    """CRUD for ``/files``."""

    table = TorcFile
    label = "File"
    list_key = "files"
    required = ("workflow_id", "name", "path")
    fields = ("id", "workflow_id", "name", "path", "st_mtime")

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """On update, null name/path keep their value; ``st_mtime`` is always set."""
        if row is None:
            return data
        values = {k: v for k, v in data.items() if v is not None and k != "st_mtime"}
        values["st_mtime"] = data.get("st_mtime")
        return values

    def list_files(
        self,
        workflow_id: int,
        *,
        produced_by_job_id: int | None = None,
        name: str | None = None,
        path: str | None = None,
        is_output: bool | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        """Files of a workflow, filtered like torc's ``GET /files``."""
        where: list[ColumnElement[bool]] = []
        if produced_by_job_id is not None:
            where.append(
                TorcFile.id.in_(
                    select(TorcJobFile.file_id).where(
                        TorcJobFile.job_id == produced_by_job_id, TorcJobFile.direction == "out"
                    )
                )
            )
        if name is not None:
            where.append(TorcFile.name == name)
        if path is not None:
            where.append(TorcFile.path == path)
        if is_output:
            where.append(
                TorcFile.id.in_(select(TorcJobFile.file_id).where(TorcJobFile.direction == "out"))
            )
        return self.list(workflow_id, where=where, **page)
