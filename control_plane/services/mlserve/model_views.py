"""Live per-triton views of a stored model: readiness, metadata, config and statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control_plane.db.tables.mlserve import ModelLoad, TritonServer
from control_plane.db.tables.registered_models import RegisteredModel
from control_plane.errors import DomainError
from control_plane.integrations import triton_client
from control_plane.schemas.mlserve.models import ModelTritonDetail, VersionRead
from control_plane.services.mlserve.targets import triton_address, triton_url
from control_plane.settings import Settings


def ms_to_dt(ms: int) -> datetime | None:
    """Triton's ``last_inference`` (ms since the epoch) as a UTC datetime; 0 is None."""
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def safe_stats(url: str, name: str) -> list[dict[str, Any]]:
    """``/stats`` entries of a model on a triton; empty when it cannot be asked."""
    try:
        return triton_client.model_stats(url, name, timeout_s=triton_client.PROBE_TIMEOUT_S)
    except DomainError:
        return []


def safe_config(url: str, name: str) -> dict[str, Any] | None:
    """``/config`` of a model on a triton; None when it cannot be asked."""
    try:
        return triton_client.model_config(url, name, timeout_s=triton_client.PROBE_TIMEOUT_S)
    except DomainError:
        return None


def triton_view(
    settings: Settings, model: RegisteredModel, load: ModelLoad, triton: TritonServer
) -> ModelTritonDetail:
    """Ask one triton about the model: ready, metadata, stats, config (or the error)."""
    host, port = triton_address(settings, triton)
    url = triton_url(settings, triton)
    view = ModelTritonDetail(
        id=triton.id,
        name=triton.name,
        ip=host,
        host=host,
        port=str(port),
        version=load.version,
        state="UNAVAILABLE",
        metadata=None,
    )
    try:
        view.state = "READY" if triton_client.model_ready(url, model.name) else "UNAVAILABLE"
        view.metadata = triton_client.model_metadata(url, model.name)
        view.stats = safe_stats(url, model.name)
        if view.state == "READY":
            view.config = safe_config(url, model.name)
    except DomainError as exc:
        view.error = exc.message
    return view


def with_stats(versions: list[VersionRead], views: list[ModelTritonDetail]) -> list[VersionRead]:
    """Per-version inference/execution counts and last inference, summed over the tritons."""
    for entry in versions:
        stats = [s for v in views for s in v.stats if str(s.get("version")) == str(entry.version)]
        entry.inference_count = sum(int(s.get("inference_count") or 0) for s in stats)
        entry.execution_count = sum(int(s.get("execution_count") or 0) for s in stats)
        last = max((int(s.get("last_inference") or 0) for s in stats), default=0)
        entry.last_inference = ms_to_dt(last)
    return versions
