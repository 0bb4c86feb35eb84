"""Serve applications of TorchServe models and workflows: names, routes, waiting for RUNNING."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from control_plane.db.tables.torchserve import TorchServeModel
from control_plane.errors import DomainError, UpstreamUnavailableError
from control_plane.integrations.serve_types import AppSpec, AppState, ServeGateway
from control_plane.services.serve_apps import app_name
from control_plane.services.torchserve.errors import bad_request
from control_plane.settings import Settings
from deployments.contracts.app_args import (
    TorchServeKeyStoreArgs,
    TorchServeModelAppArgs,
    TorchServeVersionArgs,
)
from deployments.contracts.ts_metrics import (
    HandlerMetricsConfig,
    MetricsConfigError,
    parse_metrics_config,
)

logger = logging.getLogger(__name__)

MODEL_OWNER = "ts"
WORKFLOW_OWNER = "wf"
FAILED_STATES = ("DEPLOY_FAILED", "UNHEALTHY")


def model_app(name: str) -> str:
    """Serve application name of a registered model."""
    return app_name(MODEL_OWNER, name)


def workflow_app(name: str) -> str:
    """Serve application name of a registered workflow."""
    return app_name(WORKFLOW_OWNER, name)


def read_model_config(model_dir: Path, config_file: str | None) -> dict[str, Any]:
    """The ``.mar``'s model-config.yaml (``configFile`` of its manifest), {} when absent."""
    if not config_file or not (model_dir / Path(config_file).name).is_file():
        return {}
    try:
        loaded = yaml.safe_load((model_dir / Path(config_file).name).read_text()) or {}
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def gpus_per_replica(
    settings: Settings, gateway: ServeGateway, name: str, device_type: str | None
) -> float:
    """GPUs each replica of a model (or workflow model node) reserves.

    ``deviceType: gpu`` reserves ``torchserve.gpus_per_replica`` (fractions allowed), unless
    ``number_of_gpu`` is 0 or the cluster has too few GPUs and the CPU fallback is configured.

    Raises:
        BadRequestError: a GPU model on a cluster without enough GPUs and no CPU fallback
            (the reason v2 models give, ``contracts.placement``).
    """
    ts = settings.torchserve
    if device_type != "gpu" or ts.number_of_gpu == 0:
        return 0.0
    need = ts.gpus_per_replica
    try:
        cluster = gateway.cluster_resources().get("GPU", 0.0)
    except UpstreamUnavailableError:
        cluster = 0.0
    if cluster >= need:
        return need
    if settings.serving.gpu_fallback_to_cpu:
        return 0.0
    raise bad_request(
        f"model '{name}' uses deviceType gpu and needs {need:g} GPU per replica but the "
        f"cluster has {cluster:g} GPUs; register it when a GPU node has joined "
        "(or set CP_SERVING__GPU_FALLBACK_TO_CPU=true)"
    )


def handler_metrics_args(settings: Settings) -> HandlerMetricsConfig | None:
    """Which handler metrics replicas export (None: TorchServe's default metrics.yaml).

    A ``metrics_config`` that cannot be read or parsed is logged and the defaults are used, as
    TorchServe logs "Failed to load metrics configuration" and carries on.
    """
    ts = settings.torchserve
    if ts.metrics_config is None:
        return None if ts.model_metrics_auto_detect else HandlerMetricsConfig(auto_detect=False)
    try:
        text = Path(ts.metrics_config).read_text(encoding="utf-8")
        return parse_metrics_config(text, auto_detect=ts.model_metrics_auto_detect)
    except (OSError, MetricsConfigError) as exc:
        logger.error("Failed to load metrics configuration %s: %s", ts.metrics_config, exc)
        return HandlerMetricsConfig(auto_detect=ts.model_metrics_auto_detect)


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
    handler_metrics: HandlerMetricsConfig | None = None,
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
        handler_metrics=handler_metrics,
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
