"""Torc tables.

Workflows (with their status record), jobs, files, user data, resource
requirements, compute nodes, results, events, and the job relationship tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db.base import Base

_WF_FK = "torc_workflows.id"


class TorcWorkflow(Base):
    """A workflow; its status record (``run_id``, ``is_canceled``...) shares its id."""

    __tablename__ = "torc_workflows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(500))
    user: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    timestamp: Mapped[str] = mapped_column(String(40))
    project: Mapped[str | None] = mapped_column(String(500), nullable=True)
    metadata_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    compute_node_expiration_buffer_seconds: Mapped[int] = mapped_column(Integer, default=180)
    compute_node_wait_for_new_jobs_seconds: Mapped[int] = mapped_column(Integer, default=90)
    compute_node_ignore_workflow_completion: Mapped[bool] = mapped_column(Boolean, default=False)
    compute_node_wait_for_healthy_database_minutes: Mapped[int] = mapped_column(Integer, default=20)
    compute_node_min_time_for_new_jobs_seconds: Mapped[int] = mapped_column(Integer, default=300)
    jobs_sort_method: Mapped[str] = mapped_column(String(40), default="gpus_runtime_memory")
    resource_monitor_config: Mapped[str | None] = mapped_column(Text, nullable=True)
    slurm_defaults: Mapped[str | None] = mapped_column(Text, nullable=True)
    use_pending_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The workflow status record (torc's workflow_status table, same id).
    run_id: Mapped[int] = mapped_column(Integer, default=0)
    is_canceled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_completion_script: Mapped[bool] = mapped_column(Boolean, default=False)
    # API 0.21's dynamic_jobs ({"max_iterations": n}) as JSON text.
    dynamic_jobs: Mapped[str | None] = mapped_column(Text, nullable=True)


class TorcResourceRequirements(Base):
    """Resources a job needs; ``memory_bytes``/``runtime_s`` are parsed once on write."""

    __tablename__ = "torc_resource_requirements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    num_cpus: Mapped[int] = mapped_column(Integer, default=1)
    num_gpus: Mapped[int] = mapped_column(Integer, default=0)
    num_nodes: Mapped[int] = mapped_column(Integer, default=1)
    memory: Mapped[str] = mapped_column(String(40), default="1m")
    runtime: Mapped[str] = mapped_column(String(60), default="P0DT1M")
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=1024 * 1024)
    runtime_s: Mapped[float] = mapped_column(Float, default=60.0)


class TorcJob(Base):
    """A job: a command, its status in the state machine and its resource requirements."""

    __tablename__ = "torc_jobs"
    __table_args__ = (Index("ix_torc_jobs_workflow_status", "workflow_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    command: Mapped[str] = mapped_column(Text)
    invocation_script: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="uninitialized")
    cancel_on_blocking_job_failure: Mapped[bool] = mapped_column(Boolean, default=True)
    supports_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    resource_requirements_id: Mapped[int | None] = mapped_column(
        ForeignKey("torc_resource_requirements.id", ondelete="SET NULL"), nullable=True
    )
    scheduler_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failure_handler_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempt_id: Mapped[int] = mapped_column(Integer, default=1)
    active_compute_node_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Later torc (API 0.21): claim order, per-job environment (JSON text), provenance
    # (NULL | "retry" | "spawn") and when the current attempt started.
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    env: Mapped[str | None] = mapped_column(Text, nullable=True)
    origin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    start_time: Mapped[str | None] = mapped_column(String(40), nullable=True)
    current_result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TorcFailureHandler(Base):
    """Retry rules for failed jobs (``rules``: a JSON array, interpreted by runners)."""

    __tablename__ = "torc_failure_handlers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    rules: Mapped[str] = mapped_column(Text)


class TorcWorkflowAction(Base):
    """Something to do when a trigger fires (``run_commands``, ``schedule_nodes``...)."""

    __tablename__ = "torc_workflow_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    trigger_type: Mapped[str] = mapped_column(String(40))
    action_type: Mapped[str] = mapped_column(String(60))
    action_config: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_ids: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger_count: Mapped[int] = mapped_column(Integer, default=0)
    required_triggers: Mapped[int] = mapped_column(Integer, default=1)
    executed: Mapped[bool] = mapped_column(Boolean, default=False)
    executed_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    executed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    persistent: Mapped[bool] = mapped_column(Boolean, default=False)
    is_recovery: Mapped[bool] = mapped_column(Boolean, default=False)


class TorcTask(Base):
    """An asynchronous operation on a workflow (``initialize_jobs?async=true``)."""

    __tablename__ = "torc_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    operation: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    started_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class TorcJobDependency(Base):
    """Edge ``job_id`` depends on ``depends_on_job_id`` (explicit or implicit)."""

    __tablename__ = "torc_job_dependencies"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("torc_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_job_id: Mapped[int] = mapped_column(
        ForeignKey("torc_jobs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    workflow_id: Mapped[int] = mapped_column(Integer, index=True)


class TorcJobFile(Base):
    """A job's input (``direction='in'``) or output (``'out'``) file."""

    __tablename__ = "torc_job_files"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("torc_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[int] = mapped_column(
        ForeignKey("torc_files.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    workflow_id: Mapped[int] = mapped_column(Integer, index=True)


class TorcJobUserData(Base):
    """A job's input (``'in'``) or output (``'out'``) user data."""

    __tablename__ = "torc_job_user_data"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("torc_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    user_data_id: Mapped[int] = mapped_column(
        ForeignKey("torc_user_data.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    workflow_id: Mapped[int] = mapped_column(Integer, index=True)


class TorcFile(Base):
    """A file jobs read or write (bookkeeping; the server never touches the disk)."""

    __tablename__ = "torc_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(Text)
    st_mtime: Mapped[float | None] = mapped_column(Float, nullable=True)


class TorcUserData(Base):
    """A JSON document jobs consume or produce."""

    __tablename__ = "torc_user_data"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    is_ephemeral: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[Any] = mapped_column(JSON, nullable=True)


class TorcComputeNode(Base):
    """A worker (host, Ray node) that runs jobs of a workflow."""

    __tablename__ = "torc_compute_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(500))
    pid: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[str] = mapped_column(String(60), default="")
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    is_active: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    num_cpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_gb: Mapped[float] = mapped_column(Float, default=0.0)
    num_gpus: Mapped[int] = mapped_column(Integer, default=0)
    num_nodes: Mapped[int] = mapped_column(Integer, default=1)
    time_limit: Mapped[str | None] = mapped_column(String(60), nullable=True)
    scheduler_config_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    compute_node_type: Mapped[str] = mapped_column(String(60), default="local")
    scheduler: Mapped[Any] = mapped_column(JSON, nullable=True)


class TorcResult(Base):
    """The outcome of one job attempt: return code, timing and (bounded) stdout/stderr."""

    __tablename__ = "torc_results"
    __table_args__ = (
        Index("ux_torc_results_job_run_attempt", "job_id", "run_id", "attempt_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("torc_jobs.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(Integer, default=0)
    attempt_id: Mapped[int] = mapped_column(Integer, default=1)
    compute_node_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    return_code: Mapped[int] = mapped_column(Integer, default=0)
    exec_time_minutes: Mapped[float] = mapped_column(Float, default=0.0)
    completion_time: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(20), default="completed")
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    avg_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    peak_cpu_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    avg_cpu_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    stdout: Mapped[str | None] = mapped_column(Text, nullable=True)
    stderr: Mapped[str | None] = mapped_column(Text, nullable=True)


class TorcEvent(Base):
    """Something that happened in a workflow (job transitions, user actions)."""

    __tablename__ = "torc_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey(_WF_FK, ondelete="CASCADE"), index=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[Any] = mapped_column(JSON)
