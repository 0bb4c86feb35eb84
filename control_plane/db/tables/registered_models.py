"""``registered_models``: models of the Triton-layout repository and their load state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, TimestampMixin


class RegisteredModel(TimestampMixin, Base):
    """A model known to the repository; ``loaded`` is the desired state on the built-in server."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    source_dir: Mapped[str] = mapped_column(
        String(500), doc="Model directory relative to the store root (models/<name>)."
    )
    loaded: Mapped[bool] = mapped_column(Boolean, default=False)
    config_override: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    version_pin: Mapped[int | None] = mapped_column(Integer, nullable=True)
    min_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_replicas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="UNAVAILABLE")
    status_reason: Mapped[str] = mapped_column(String(2000), default="")
