"""``leases``: named, expiring locks held by one control-plane replica at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base


class Lease(Base):
    """Who holds ``name`` (e.g. the reconciler) until ``expires_at``."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
