"""Torc events: what happened in a workflow (server transitions and client posts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from control_plane.db.tables.torc import TorcEvent
from control_plane.services.torc.common import now_ms
from control_plane.services.torc.crud import TorcCrud


class EventService(TorcCrud):
    """CRUD for ``/events``; the server stamps ``timestamp`` (ms) on create."""

    table = TorcEvent
    label = "Event"
    list_key = "events"
    required = ("workflow_id",)
    fields = ("id", "workflow_id", "timestamp", "data")

    def prepare(self, data: dict[str, Any], row: Any | None) -> dict[str, Any]:
        """Stamp new events with the server's time; null keeps old values on update."""
        values = {k: v for k, v in data.items() if v is not None}
        if row is None:
            values["timestamp"] = now_ms()
            values.setdefault("data", {})
        return values

    def list_events(
        self, workflow_id: int, *, after_timestamp: int | None = None, **page: Any
    ) -> dict[str, Any]:
        """Events of a workflow, optionally strictly after a timestamp (ms)."""
        where: list[ColumnElement[bool]] = []
        if after_timestamp is not None:
            where.append(TorcEvent.timestamp > after_timestamp)
        return self.list(workflow_id, where=where, **page)
