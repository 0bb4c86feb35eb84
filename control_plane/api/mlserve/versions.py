"""``/api/models/{id}/versions``: list, (chunked) upload, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from control_plane.api.mlserve.deps import (
    AdminDep,
    GatewayDep,
    SessionDep,
    SettingsDep,
    form_int,
    read_multipart,
)
from control_plane.errors import BadRequestError
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.services.mlserve.models import ModelStoreService

router = APIRouter(tags=["mlserve: versions"])

VERSION_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "Files[]": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        "version": {"type": "integer"},
                        "offset": {"type": "integer", "description": "Chunk start (resumable)."},
                        "check": {"type": "string", "description": "md5:<hex> or sha256:<hex>."},
                    },
                }
            }
        }
    }
}


@router.get("/models/{ident}/versions", operation_id="apiModelVersionList")
def list_versions(
    ident: str, _admin: AdminDep, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> dict[str, Any]:
    """Versions of a model with their state and files."""
    store = ModelStoreService(session, gateway, settings)
    versions = store.versions.list(store.get_row(ident))
    return {"versions": [v.model_dump(mode="json") for v in versions]}


@router.post(
    "/models/{ident}/versions", operation_id="apiModelVersionCreate", openapi_extra=VERSION_BODY
)
async def create_version(
    ident: str,
    request: Request,
    _admin: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Upload a version (``Files[]``), or one chunk of it (``offset``; ``check`` finalizes)."""
    fields, files = await read_multipart(request, settings.store.max_upload_bytes)
    for key, value in request.query_params.items():
        fields.setdefault(key, value)
    store = ModelStoreService(session, gateway, settings)
    result = await run_in_threadpool(
        lambda: store.upload_version(
            ident,
            files,
            version=form_int(fields, "version"),
            offset=form_int(fields, "offset"),
            check=fields.get("check") or None,
        )
    )
    status = 201 if result.status == "ok" else 202
    return JSONResponse(result.model_dump(mode="json", exclude_none=True), status_code=status)


@router.delete("/models/{ident}/versions/{version}", operation_id="apiModelVersionDelete")
def delete_version(
    ident: str,
    version: int,
    _admin: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> StatusOk:
    """Delete a version (tritons serving it reload)."""
    ModelStoreService(session, gateway, settings).delete_version(ident, version)
    return StatusOk()


@router.delete("/models/{ident}/versions", operation_id="apiModelVersionDeleteByQuery")
def delete_version_by_query(
    ident: str,
    _admin: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    version: int | None = None,
) -> StatusOk:
    """Seed form of version delete: ``?version=N``."""
    if version is None:
        raise BadRequestError("name the version to delete: ?version=N", code="version_required")
    ModelStoreService(session, gateway, settings).delete_version(ident, version)
    return StatusOk()
