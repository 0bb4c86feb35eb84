"""Torc resource requirements: CPUs, GPUs, nodes, memory (``128g``) and runtime (``PT8H``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from control_plane.db.tables.torc import TorcJob, TorcResourceRequirements
from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import parse_memory, parse_runtime
from control_plane.services.torc.crud import TorcCrud

DEFAULTS: dict[str, Any] = {
    "num_cpus": 1,
    "num_gpus": 0,
    "num_nodes": 1,
    "memory": "1m",
    "runtime": "P0DT1M",
}


class ResourceRequirementsService(TorcCrud):
    """CRUD for ``/resource_requirements``; memory and runtime are validated and parsed."""

    table = TorcResourceRequirements
    label = "Resource requirements"
    list_key = "resource_requirements"
    fields = ("id", "workflow_id", "name", "num_cpus", "num_gpus", "num_nodes", "memory", "runtime")

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """Apply defaults, check counts, parse ``memory`` and ``runtime``."""
        values = {k: v for k, v in data.items() if v is not None}
        if row is None:
            values = {**DEFAULTS, **values}
            if values.get("name") == "default":
                raise ValidationFailedError(
                    "Resource requirements name 'default' is reserved", code="reserved_name"
                )
        for key in ("num_cpus", "num_gpus", "num_nodes"):
            if key in values and values[key] < 0:
                raise ValidationFailedError(f"Got {key}={values[key]}; it must be >= 0")
        if "memory" in values:
            values["memory_bytes"] = parse_memory(values["memory"])
        if "runtime" in values:
            values["runtime_s"] = parse_runtime(values["runtime"])
        return values

    def create_default(self, workflow_id: int) -> TorcResourceRequirements:
        """The ``default`` requirements every workflow gets (caller commits)."""
        row = TorcResourceRequirements(
            workflow_id=workflow_id,
            name="default",
            num_cpus=1,
            num_gpus=0,
            num_nodes=1,
            memory="1m",
            runtime="P0DT1M",
            memory_bytes=parse_memory("1m"),
            runtime_s=parse_runtime("P0DT1M"),
        )
        self.session.add(row)
        return row

    def list_requirements(
        self,
        workflow_id: int,
        *,
        job_id: int | None = None,
        name: str | None = None,
        memory: str | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        num_nodes: int | None = None,
        runtime: int | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        """Requirements of a workflow, filtered like torc's ``GET /resource_requirements``."""
        table = TorcResourceRequirements
        where: list[ColumnElement[bool]] = []
        if job_id is not None:
            where.append(
                table.id.in_(select(TorcJob.resource_requirements_id).where(TorcJob.id == job_id))
            )
        for column, value in (
            (table.name, name),
            (table.memory, memory),
            (table.num_cpus, num_cpus),
            (table.num_gpus, num_gpus),
            (table.num_nodes, num_nodes),
            (table.runtime_s, runtime),
        ):
            if value is not None:
                where.append(column == value)
        return self.list(workflow_id, where=where, **page)
