"""``serve_apps``: the desired Ray Serve applications (the reconciler's source of truth)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, TimestampMixin


class ServeAppRecord(TimestampMixin, Base):
    """One application the platform wants running in Ray Serve."""

    __tablename__ = "serve_apps"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), doc="Surface that owns it (v2, ts, wf, gw).")
    route_prefix: Mapped[str | None] = mapped_column(String(300), nullable=True)
    builder: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec_hash: Mapped[str] = mapped_column(String(64))
    applied_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
