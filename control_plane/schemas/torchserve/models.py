"""TorchServe Model Management responses: ``GET /models`` and ``GET /models/{m}[/{v}|/all]``."""

from __future__ import annotations

from pydantic import Field

from control_plane.schemas.torchserve.base import TorchServeRead


class TorchServeModelSummary(TorchServeRead):
    """One entry of ``GET /models``: a registered model's default version."""

    model_name: str = Field(description="Registered model name (``<wf>__<node>`` for nodes).")
    model_url: str = Field(description="The url exactly as registered (store name or URL).")


class TorchServeModelPage(TorchServeRead):
    """``GET /models?limit=&next_page_token=``: one page of models sorted by name."""

    next_page_token: str | None = Field(
        default=None,
        description="Offset of the next page; omitted when this page reaches past the end.",
    )
    models: list[TorchServeModelSummary] = Field(description="This page's models.")


class TorchServeWorkerRead(TorchServeRead):
    """One worker of a described model (a RUNNING Serve replica)."""

    id: str = Field(description="Worker id, TorchServe style (``9000``, ``9001``...).")
    start_time: str = Field(description="ISO 8601 time the version was last updated.")
    status: str = Field(description="``READY``.")
    memory_usage: int = Field(description="Always 0: replicas do not report it here.")
    pid: int = Field(description="Always -1: a replica is not a local process.")
    gpu: bool = Field(description="Whether the worker runs on a GPU.")
    gpu_usage: str = Field(description="``N/A``.")


class TorchServeJobQueueRead(TorchServeRead):
    """``jobQueueStatus`` of a described model."""

    remaining_capacity: int = Field(description="Requests the queue still accepts.")
    pending_requests: int = Field(description="Requests waiting for a worker.")


class TorchServeModelRead(TorchServeRead):
    """One element of ``GET /models/{m}[/{v}|/all]`` (the response is an array of these)."""

    model_name: str = Field(description="Registered model name.")
    model_version: str = Field(description="This version (MANIFEST modelVersion, default 1.0).")
    model_url: str = Field(description="The url exactly as registered.")
    runtime: str = Field(description="``python``, ``python3`` or ``LSP``.")
    min_workers: int = Field(description="Lower replica bound.")
    max_workers: int = Field(description="Upper replica bound.")
    batch_size: int = Field(description="Items per batch.")
    max_batch_delay: int = Field(description="Milliseconds to wait to fill a batch.")
    response_timeout: int = Field(description="Seconds one inference may take.")
    startup_timeout: int = Field(description="Seconds workers may take to start.")
    max_retry_timeout_in_sec: int = Field(description="TorchServe's worker retry budget, seconds.")
    client_timeout_in_mills: int = Field(description="Client timeout in ms; 0 is none.")
    parallel_type: str = Field(description="Model-parallel type; empty when none.")
    parallel_level: int = Field(description="Model-parallel degree; 0 when none.")
    device_type: str = Field(description="``cpu`` or ``gpu``.")
    continuous_batching: bool = Field(description="Always false here.")
    use_job_ticket: bool = Field(description="Always false here.")
    use_venv: bool = Field(description="Always false here.")
    stateful: bool = Field(description="Always false here.")
    loaded_at_startup: bool = Field(description="Registered from ``load_models`` at start.")
    workers: list[TorchServeWorkerRead] = Field(description="Running workers (default version).")
    job_queue_status: TorchServeJobQueueRead = Field(description="Queue capacity and backlog.")
