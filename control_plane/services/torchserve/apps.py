"""Serve applications of TorchServe models and workflows: names, routes, waiting for RUNNING."""

from __future__ import annotations

import time
from collections.abc import Iterable

from control_plane.db.tables.torchserve import TorchServeModel
from control_plane.errors import DomainError
from control_plane.integrations.serve_types import AppSpec, AppState, ServeGateway
from control_plane.services.serve_apps import app_name
from deployments.contracts.app_args import (
    TorchServeKeyStoreArgs,
    TorchServeModelAppArgs,
    TorchServeVersionArgs,
)

MODEL_OWNER = "ts"
WORKFLOW_OWNER = "wf"
FAILED_STATES = ("DEPLOY_FAILED", "UNHEALTHY")


def model_app(name: str) -> str:
    """Serve application name of a registered model."""
    return app_name(MODEL_OWNER, name)


def workflow_app(name: str) -> str:
    """Serve application name of a registered workflow."""
    return app_name(WORKFLOW_OWNER, name)


def version_args(row: TorchServeModel) -> TorchServeVersionArgs:
    """What the model server needs to load one version."""
    return TorchServeVersionArgs(
        archive=row.archive_path,
        model_dir=row.model_dir,
        handler=row.handler,
        batch_size=row.batch_size,
        max_batch_delay=row.max_batch_delay,
        response_timeout=row.response_timeout,
    )


def model_app_spec(
    name: str,
    rows: Iterable[TorchServeModel],
    max_ongoing: int,
    max_extract_bytes: int,
    key_store: TorchServeKeyStoreArgs | None = None,
) -> AppSpec | None:
    """The app serving every version of a model, or None when no version has workers."""
    rows = list(rows)
    default = next((r for r in rows if r.is_default), rows[0] if rows else None)
    if default is None or default.max_workers <= 0:
        return None
    args = TorchServeModelAppArgs(
        name=name,
        default_version=default.version,
        versions={r.version: version_args(r) for r in rows},
        min_workers=default.min_workers,
        max_workers=default.max_workers,
        # jobQueueSize bounds the requests waiting for a worker: a replica then takes one batch
        # at a time, as a TorchServe worker does, and Serve queues (and refuses) the rest.
        max_ongoing_requests=default.batch_size if default.job_queue_size else max_ongoing,
        max_extract_bytes=max_extract_bytes,
        key_store=key_store,
        max_queued_requests=default.job_queue_size,
        num_gpus=default.num_gpus or 0.0,
    )
    return AppSpec(model_app(name), f"/predictions/{name}", args)


def wait_running(gateway: ServeGateway, name: str, timeout_s: float) -> AppState | None:
    """Poll Serve until ``name`` is RUNNING; returns the last state (failed/timeout: not running).

    Raises:
        DomainError: Serve status unavailable.
    """
    deadline = time.monotonic() + timeout_s
    state: AppState | None = None
    while True:
        try:
            state = gateway.status().get(name)
        except DomainError:
            state = None
        if state is not None and (state.running or state.status in FAILED_STATES):
            return state
        if time.monotonic() >= deadline:
            return state
        time.sleep(0.25)


def running_replicas(state: AppState | None) -> int:
    """Number of RUNNING replicas over the app's deployments."""
    if state is None:
        return 0
    return sum(d.replica_states.get("RUNNING", 0) for d in state.deployments.values())
