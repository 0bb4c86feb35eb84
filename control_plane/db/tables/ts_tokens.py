"""``ts_token_keys``: TorchServe token-authorization keys, shared by every replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, utcnow


class TorchServeTokenKey(Base):
    """The current key of one type (management, inference, API); only its digest is stored."""

    __tablename__ = "ts_token_keys"

    key_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    key_digest: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, doc="None: never expires (the API key)."
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
