"""``/api/models``: the model store, per-triton views, load and unload."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve.deps import AdminDep, ModelStoreDep, SettingsDep, read_multipart
from control_plane.api.mlserve.envelopes import created, model_detail
from control_plane.errors import BadRequestError
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.models import (
    LoadRequest,
    ModelCreated,
    ModelDetailEnvelope,
    ModelList,
    ModelPatch,
)

router = GatedRouter(tags=["mlserve: models"])


def json_body(schema: type[Any]) -> dict[str, Any]:
    """OpenAPI for a body the route parses itself (JSON, form or query string)."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        }
    }


FILES_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "files[]": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                    },
                }
            }
        }
    }
}


async def parse_body(request: Request, schema: type[Any]) -> Any:
    """A JSON (or form, or query-string) body validated against ``schema`` (400 on errors)."""
    raw: dict[str, Any] = {}
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if body.strip():
        if "form" in content_type:
            raw = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        else:
            try:
                raw = json.loads(body)
            except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
                raise BadRequestError(
                    f"body is not valid JSON: {exc}", code="invalid_json"
                ) from None
            if not isinstance(raw, dict):
                raise BadRequestError("body must be a JSON object", code="invalid_json")
    for key, value in request.query_params.items():
        raw.setdefault(key, value)
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise BadRequestError(problems, code="invalid_request") from None


@router.get("/models", operation_id="apiModelList")
def list_models(_admin: AdminDep, store: ModelStoreDep) -> ModelList:
    """List stored models."""
    return ModelList(models=store.list())


@router.post("/models", status_code=201, operation_id="apiModelCreate", openapi_extra=FILES_BODY)
async def create_model(
    request: Request, _admin: AdminDep, store: ModelStoreDep, settings: SettingsDep
) -> ModelCreated:
    """Store a model from multipart ``name`` + ``files[]``."""
    fields, files = await read_multipart(request, settings.store.max_upload_bytes)
    model_id = await run_in_threadpool(store.create, fields.get("name") or None, files)
    model = await run_in_threadpool(store.get, str(model_id))
    return created(model_id, model, ModelCreated)


@router.get("/models/{ident}", operation_id="apiModelGet")
def get_model(
    ident: str, _admin: AdminDep, store: ModelStoreDep, triton_id: str | None = None
) -> ModelDetailEnvelope:
    """Model detail: the seed's planned fields, its "Now" ``config`` and the full ``data``.

    Top level: ``versions`` are version objects with counts and ``config`` is
    ``{"host:port": metadata}`` (seed); ``data`` holds the detail with ``versions`` as numbers
    and ``config`` as the store's Triton config (reference). ``triton_id`` keeps one triton.
    """
    return model_detail(store.detail(ident, triton=triton_id))


@router.patch("/models/{ident}", operation_id="apiModelUpdate", openapi_extra=json_body(ModelPatch))
async def update_model(
    ident: str, request: Request, _admin: AdminDep, store: ModelStoreDep, settings: SettingsDep
) -> StatusOk:
    """Patch config/name/description (JSON) or replace root files (multipart ``files[]``)."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        _fields, files = await read_multipart(request, settings.store.max_upload_bytes)
        await run_in_threadpool(store.replace_root_files, ident, files)
    else:
        body = await parse_body(request, ModelPatch)
        await run_in_threadpool(store.patch, ident, body)
    return StatusOk()


@router.delete("/models/{ident}", operation_id="apiModelDelete")
def delete_model(ident: str, _admin: AdminDep, store: ModelStoreDep) -> StatusOk:
    """Unload everywhere, then delete the model."""
    store.delete(ident)
    return StatusOk()


@router.post(
    "/models/{ident}/load", operation_id="apiModelLoad", openapi_extra=json_body(LoadRequest)
)
async def load_model(
    ident: str, request: Request, _admin: AdminDep, store: ModelStoreDep
) -> StatusOk:
    """Load (or reload) the model on a triton (``triton_id``, optional ``version``)."""
    body: LoadRequest = await parse_body(request, LoadRequest)
    await run_in_threadpool(store.load, ident, body.triton_id, body.version)
    return StatusOk()


@router.post(
    "/models/{ident}/unload", operation_id="apiModelUnload", openapi_extra=json_body(LoadRequest)
)
async def unload_model(
    ident: str, request: Request, _admin: AdminDep, store: ModelStoreDep
) -> StatusOk:
    """Unload the model from a triton (``triton_id``)."""
    body: LoadRequest = await parse_body(request, LoadRequest)
    await run_in_threadpool(store.unload, ident, body.triton_id)
    return StatusOk()
