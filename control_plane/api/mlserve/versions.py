"""``/api/models/{id}/versions``: list, (chunked) upload, delete."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve.deps import (
    AdminDep,
    ModelStoreDep,
    SettingsDep,
    form_int,
    read_multipart,
)
from control_plane.errors import BadRequestError
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.models import VersionList, VersionUploaded

router = GatedRouter(tags=["mlserve: versions"])

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
def list_versions(ident: str, _admin: AdminDep, store: ModelStoreDep) -> VersionList:
    """Versions of a model with their state and files."""
    return VersionList(versions=store.list_versions(ident))


@router.post(
    "/models/{ident}/versions",
    operation_id="apiModelVersionCreate",
    openapi_extra=VERSION_BODY,
    status_code=201,
    response_model_exclude_none=True,
    response_description="The version is ready (``status: ok``).",
    responses={
        202: {
            "model": VersionUploaded,
            "description": "A chunk was appended (``status: partial``, ``offset``, ``file``).",
        }
    },
)
async def create_version(
    ident: str,
    request: Request,
    response: Response,
    _admin: AdminDep,
    store: ModelStoreDep,
    settings: SettingsDep,
) -> VersionUploaded:
    """Upload a version (``Files[]``), or one chunk of it (``offset``; ``check`` finalizes)."""
    fields, files = await read_multipart(request, settings.store.max_upload_bytes)
    for key, value in request.query_params.items():
        fields.setdefault(key, value)
    result = await run_in_threadpool(
        lambda: store.upload_version(
            ident,
            files,
            version=form_int(fields, "version"),
            offset=form_int(fields, "offset"),
            check=fields.get("check") or None,
        )
    )
    if result.status != "ok":
        response.status_code = 202
    return result


@router.delete("/models/{ident}/versions/{version}", operation_id="apiModelVersionDelete")
def delete_version(ident: str, version: int, _admin: AdminDep, store: ModelStoreDep) -> StatusOk:
    """Delete a version (tritons serving it reload)."""
    store.delete_version(ident, version)
    return StatusOk()


@router.delete("/models/{ident}/versions", operation_id="apiModelVersionDeleteByQuery")
def delete_version_by_query(
    ident: str, _admin: AdminDep, store: ModelStoreDep, version: int | None = None
) -> StatusOk:
    """Seed form of version delete: ``?version=N``."""
    if version is None:
        raise BadRequestError("name the version to delete: ?version=N", code="version_required")
    store.delete_version(ident, version)
    return StatusOk()
