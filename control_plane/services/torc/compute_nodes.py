"""Torc compute nodes: the workers (hosts, Ray nodes) that run a workflow's jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from control_plane.db.tables.torc import TorcComputeNode
from control_plane.services.torc.common import now_iso, parse_memory
from control_plane.services.torc.crud import TorcCrud


class ComputeNodeService(TorcCrud):
    """CRUD for ``/compute_nodes``; accepts the seed's ``memory: "256g"`` as ``memory_gb``."""

    table = TorcComputeNode
    label = "Compute node"
    list_key = "compute_nodes"
    required = ("workflow_id", "hostname")
    fields = (
        "id",
        "workflow_id",
        "hostname",
        "pid",
        "start_time",
        "duration_seconds",
        "is_active",
        "num_cpus",
        "memory_gb",
        "num_gpus",
        "num_nodes",
        "time_limit",
        "scheduler_config_id",
        "compute_node_type",
        "scheduler",
    )

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """Fill the seed-form gaps on create; null keeps the old value on update."""
        values = {k: v for k, v in data.items() if v is not None}
        memory = values.pop("memory", None)
        if memory is not None and "memory_gb" not in values:
            values["memory_gb"] = parse_memory(memory) / 1024**3
        if row is None:
            values.setdefault("pid", 0)
            values.setdefault("start_time", now_iso())
            values.setdefault("num_nodes", 1)
            values.setdefault("num_gpus", 0)
            values.setdefault("num_cpus", 0)
            values.setdefault("memory_gb", 0.0)
            values.setdefault("compute_node_type", "local")
        return values

    def list_nodes(
        self,
        workflow_id: int,
        *,
        hostname: str | None = None,
        is_active: bool | None = None,
        scheduled_compute_node_id: int | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        """Compute nodes of a workflow, filtered like torc's ``GET /compute_nodes``."""
        where: list[ColumnElement[bool]] = []
        if hostname is not None:
            where.append(TorcComputeNode.hostname == hostname)
        if is_active is not None:
            where.append(TorcComputeNode.is_active == is_active)
        if scheduled_compute_node_id is not None:
            where.append(TorcComputeNode.scheduler_config_id == scheduled_compute_node_id)
        return self.list(workflow_id, where=where, **page)
