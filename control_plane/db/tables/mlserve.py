"""MLServe admin tables: tritons, model versions and load records, users, client apps.

A stored model is a ``registered_models`` row (shared with the v2 surface); the rows here
reference it. The built-in server is the reserved triton row with id 0 (``kind='builtin'``),
inserted by the migration, so load records always point at a triton row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, TimestampMixin, utcnow

BUILTIN_TRITON_ID = 0


class TritonServer(TimestampMixin, Base):
    """A registered v2 inference server (``kind='external'``) or the built-in one (id 0)."""

    __tablename__ = "mlserve_tritons"
    __table_args__ = (UniqueConstraint("host", "port", name="uq_mlserve_tritons_host_port"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="external")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class ModelInfo(TimestampMixin, Base):
    """MLServe extras of a stored model (the model itself is a ``registered_models`` row)."""

    __tablename__ = "mlserve_models"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str] = mapped_column(String(2000), default="")


class ModelVersion(TimestampMixin, Base):
    """One version of a stored model; ``uploading`` until a chunked upload is finalized."""

    __tablename__ = "mlserve_model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_mlserve_model_versions_mv"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="ready")
    upload: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, doc="Chunked upload progress: relative file name -> bytes received."
    )


class ModelLoad(TimestampMixin, Base):
    """A model loaded (desired) on a triton; re-applied or re-checked on start."""

    __tablename__ = "mlserve_model_loads"
    __table_args__ = (UniqueConstraint("model_id", "triton_id", name="uq_mlserve_model_loads_mt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    triton_id: Mapped[int] = mapped_column(
        ForeignKey("mlserve_tritons.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="READY")
    error: Mapped[str] = mapped_column(String(2000), default="")
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MLServeUser(TimestampMixin, Base):
    """An admin-API user and gateway consumer; only hashes of the password and key are kept."""

    __tablename__ = "mlserve_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="user")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(255))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(16), default="")


class ClientApp(TimestampMixin, Base):
    """A gateway application (Kong service): routes to models, consumers allowed to call them."""

    __tablename__ = "mlserve_apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=1)
    retries: Mapped[int] = mapped_column(Integer, default=5)


class AppRoute(TimestampMixin, Base):
    """A model exposed by an app under one or more paths."""

    __tablename__ = "mlserve_app_routes"
    __table_args__ = (UniqueConstraint("app_id", "model_id", name="uq_mlserve_app_routes_am"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(
        ForeignKey("mlserve_apps.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    protocols: Mapped[list[str]] = mapped_column(JSON, default=list)
    methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    strip_path: Mapped[bool] = mapped_column(Boolean, default=True)


class AppConsumer(Base):
    """Membership: the user may consume the app (Kong ACL group)."""

    __tablename__ = "mlserve_app_consumers"

    app_id: Mapped[int] = mapped_column(
        ForeignKey("mlserve_apps.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("mlserve_users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
