"""TorchServe registrations: ``.mar`` model versions and ``.war`` workflows (desired state)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base, TimestampMixin


class TorchServeModel(TimestampMixin, Base):
    """One registered version of a TorchServe model."""

    __tablename__ = "ts_models"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), doc="The url exactly as registered.")
    archive_path: Mapped[str] = mapped_column(
        String(2000), doc="The .mar (or directory) in the store."
    )
    model_dir: Mapped[str] = mapped_column(String(2000), doc="Where the archive is extracted.")
    downloaded: Mapped[bool] = mapped_column(Boolean, default=False, doc="Copied in from a URL.")
    handler: Mapped[str] = mapped_column(String(500))
    runtime: Mapped[str] = mapped_column(String(20), default="python")
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    max_batch_delay: Mapped[int] = mapped_column(Integer, default=100, doc="Milliseconds.")
    response_timeout: Mapped[int] = mapped_column(Integer, default=120, doc="Seconds.")
    startup_timeout: Mapped[int] = mapped_column(Integer, default=120, doc="Seconds.")
    min_workers: Mapped[int] = mapped_column(Integer, default=0)
    max_workers: Mapped[int] = mapped_column(Integer, default=0)
    job_queue_size: Mapped[int | None] = mapped_column(
        Integer, nullable=True, doc="model-config.yaml jobQueueSize (None: Serve's default)."
    )
    num_gpus: Mapped[float] = mapped_column(
        Float, default=0.0, doc="GPUs per replica (deviceType gpu), 0 on CPU."
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    loaded_at_startup: Mapped[bool] = mapped_column(Boolean, default=False)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TorchServeWorkflow(TimestampMixin, Base):
    """One registered workflow and how its DAG is deployed."""

    __tablename__ = "ts_workflows"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), doc="The url exactly as registered.")
    archive_path: Mapped[str] = mapped_column(String(2000))
    war_dir: Mapped[str] = mapped_column(String(2000))
    downloaded: Mapped[bool] = mapped_column(Boolean, default=False)
    handler: Mapped[str] = mapped_column(String(500))
    spec: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, doc="Parsed spec: globals, raw dag, models with configs."
    )
    execution: Mapped[str] = mapped_column(String(20), default="auto")
    app_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, doc="Builder args.")
    loaded_at_startup: Mapped[bool] = mapped_column(Boolean, default=False)
