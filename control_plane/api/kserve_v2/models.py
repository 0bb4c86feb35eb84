"""Per-model endpoints the control plane answers when no model application owns the path.

A loaded model's Serve application (route prefix ``/v2/models/<name>``) answers its own
metadata, ready, config, stats and infer; requests reach these handlers only for models that
are unknown, unloaded or still loading, and for the all-models ``/v2/models/stats``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.kserve_v2.deps import ModelServiceDep
from control_plane.errors import BadRequestError, UpstreamUnavailableError
from control_plane.schemas.kserve_v2.common import V2Error
from control_plane.schemas.kserve_v2.models import (
    V2InferResponse,
    V2ModelConfig,
    V2ModelMetadata,
    V2StatisticsResponse,
)

router = GatedRouter(prefix="/v2/models")

_SERVED = "Answered by the model's own Serve application once the model is loaded."


def _served(model: type[Any], what: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI of a path a loaded model's application answers (the control plane: errors)."""
    return {
        200: {"model": model, "description": f"{what}. {_SERVED}"},
        404: {"model": V2Error, "description": "Unknown model, or known but not loaded."},
        503: {"model": V2Error, "description": "The model is still loading (or failed)."},
    }


_INFER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"Inference result. {_SERVED} JSON, or with binary outputs the JSON "
        "header (its length in Inference-Header-Content-Length) followed by the raw tensors.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "model": V2InferResponse,
    },
    400: {"model": V2Error, "description": "Invalid input (shape, datatype, count, batch)."},
    404: {"model": V2Error, "description": "Unknown model, or known but not loaded."},
    503: {"model": V2Error, "description": "The model is still loading (or failed)."},
}
_READY: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not ready, or not served (empty body)."},
}
_STATS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": V2StatisticsResponse,
        "description": f"The model's statistics. {_SERVED}",
    },
    400: {"model": V2Error, "description": "The model is not available (as in Triton)."},
}


@router.get("/stats", operation_id="get_all_model_stats", response_model=V2StatisticsResponse)
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


_READY_ROUTE: dict[str, Any] = {
    "response_class": Response,
    "response_description": f"Ready (empty body). {_SERVED}",
    "responses": _READY,
}


@router.get("/{model_name}/ready", operation_id="get_model_ready", **_READY_ROUTE)
@router.get(
    "/{model_name}/versions/{version}/ready", operation_id="get_model_version_ready", **_READY_ROUTE
)
def get_model_ready(model_name: str, version: str | None = None) -> Response:
    """Model readiness: 400 for anything that is not being served."""
    return Response(status_code=400)


@router.get(
    "/{model_name}",
    operation_id="get_model_metadata",
    responses=_served(V2ModelMetadata, "Model metadata"),
)
@router.get(
    "/{model_name}/versions/{version}",
    operation_id="get_model_version_metadata",
    responses=_served(V2ModelMetadata, "Model metadata"),
)
@router.get(
    "/{model_name}/config",
    operation_id="get_model_config",
    responses=_served(V2ModelConfig, "Triton's JSON model configuration"),
)
@router.get(
    "/{model_name}/versions/{version}/config",
    operation_id="get_model_version_config",
    responses=_served(V2ModelConfig, "Triton's JSON model configuration"),
)
@router.post("/{model_name}/infer", operation_id="post_model_infer", responses=_INFER)
@router.post(
    "/{model_name}/versions/{version}/infer",
    operation_id="post_model_version_infer",
    responses=_INFER,
)
def get_model_fallback(
    model_name: str, models: ModelServiceDep, version: str | None = None
) -> None:
    """Metadata/config/infer of a model without a running application: 404 or 503."""
    _not_served(models, model_name)


@router.get("/{model_name}/stats", operation_id="get_model_stats", responses=_STATS)
@router.get(
    "/{model_name}/versions/{version}/stats",
    operation_id="get_model_version_stats",
    responses=_STATS,
)
def get_model_stats(model_name: str, models: ModelServiceDep, version: str | None = None) -> None:
    """Statistics of a model that is not served: 400 as in Triton."""
    raise BadRequestError(f"requested model '{model_name}' is not available")
