"""Repository extension: index, load (with config and ``file:`` overrides), unload."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.kserve_v2.deps import JsonBody, ModelServiceDep, optional_body
from control_plane.errors import BadRequestError
from control_plane.schemas.kserve_v2.repository import (
    V2LoadRequest,
    V2RepositoryIndexEntry,
    V2RepositoryIndexRequest,
    V2UnloadRequest,
)

router = GatedRouter(prefix="/v2/repository")


# The service returns only the keys that apply to each entry; exclude_unset keeps it so.
@router.post(
    "/index",
    operation_id="post_repository_index",
    response_model=list[V2RepositoryIndexEntry],
    response_model_exclude_unset=True,
    openapi_extra=optional_body(V2RepositoryIndexRequest),
)
def post_repository_index(models: ModelServiceDep, body: JsonBody) -> list[dict[str, Any]]:
    """Every model in the repository with its state (``{"ready": true}`` filters)."""
    return models.index(ready_only=bool(body.get("ready", False)))


def _load_parameters(body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str | bytes]]:
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequestError("'parameters' must be an object")
    config = params.get("config")
    override: dict[str, Any] | None = None
    if config is not None:
        if isinstance(config, str):
            try:
                override = json.loads(config)
            except json.JSONDecodeError as exc:
                raise BadRequestError(f"failed to parse the 'config' parameter: {exc}") from None
        elif isinstance(config, dict):
            override = config
        if not isinstance(override, dict):
            raise BadRequestError("the 'config' parameter must be a JSON object")
    files = {k: v for k, v in params.items() if k.startswith("file:")}
    return override, files


@router.post(
    "/models/{model_name}/load",
    operation_id="post_repository_load",
    response_class=Response,
    response_description="Loaded and answering (empty body).",
    openapi_extra=optional_body(V2LoadRequest),
)
async def post_repository_load(
    model_name: str, models: ModelServiceDep, body: JsonBody
) -> Response:
    """Load or reload a model; 200 once it answers (Triton's load is synchronous)."""
    override, files = _load_parameters(body)
    await run_in_threadpool(models.load, model_name, config_override=override, files=files or None)
    return Response(status_code=200)


@router.post(
    "/models/{model_name}/unload",
    operation_id="post_repository_unload",
    response_class=Response,
    response_description="Unloaded, or was not loaded (empty body).",
    openapi_extra=optional_body(V2UnloadRequest),
)
async def post_repository_unload(
    model_name: str, models: ModelServiceDep, body: JsonBody
) -> Response:
    """Unload a model (unknown models are fine, as in Triton)."""
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequestError("'parameters' must be an object")
    dependents = params.get("unload_dependents", False)
    if not isinstance(dependents, bool):
        raise BadRequestError("the 'unload_dependents' parameter must be a boolean")
    await run_in_threadpool(models.unload, model_name, unload_dependents=dependents)
    return Response(status_code=200)
