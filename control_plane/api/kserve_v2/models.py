"""Per-model endpoints the control plane answers when no model application owns the path.

A loaded model's Serve application (route prefix ``/v2/models/<name>``) answers its own
metadata, ready, config, stats and infer; requests reach these handlers only for models that
are unknown, unloaded or still loading, and for the all-models ``/v2/models/stats``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from control_plane.api.kserve_v2.deps import ModelServiceDep
from control_plane.errors import BadRequestError, UpstreamUnavailableError

router = APIRouter(prefix="/v2/models")


@router.get("/stats", operation_id="get_all_model_stats")
async def get_all_model_stats(models: ModelServiceDep) -> dict[str, Any]:
    """Statistics of every loaded model."""
    return await run_in_threadpool(models.model_stats)


def _not_served(models: ModelServiceDep, name: str) -> None:
    """Raise the error Triton gives for a model without a serving application."""
    models.spec_of(name)  # unknown or unloaded -> 404 with Triton's text
    status = models.status(name)
    raise UpstreamUnavailableError(
        f"model '{name}' is not ready yet: {status.state} {status.reason}".strip()
    )


@router.get("/{model_name}/ready", operation_id="get_model_ready")
@router.get("/{model_name}/versions/{version}/ready", operation_id="get_model_version_ready")
def get_model_ready(model_name: str, version: str | None = None) -> Response:
    """Model readiness: 400 for anything that is not being served."""
    return Response(status_code=400)


@router.get("/{model_name}", operation_id="get_model_metadata")
@router.get("/{model_name}/versions/{version}", operation_id="get_model_version_metadata")
@router.get("/{model_name}/config", operation_id="get_model_config")
@router.get("/{model_name}/versions/{version}/config", operation_id="get_model_version_config")
@router.post("/{model_name}/infer", operation_id="post_model_infer")
@router.post("/{model_name}/versions/{version}/infer", operation_id="post_model_version_infer")
def get_model_fallback(
    model_name: str, models: ModelServiceDep, version: str | None = None
) -> None:
    """Metadata/config/infer of a model without a running application: 404 or 503."""
    _not_served(models, model_name)


@router.get("/{model_name}/stats", operation_id="get_model_stats")
@router.get("/{model_name}/versions/{version}/stats", operation_id="get_model_version_stats")
def get_model_stats(model_name: str, models: ModelServiceDep, version: str | None = None) -> None:
    """Statistics of a model that is not served: 400 as in Triton."""
    raise BadRequestError(f"requested model '{model_name}' is not available")
