"""``/api/tritons``: registered v2 inference servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from control_plane.api.mlserve.deps import AdminDep, GatewayDep, SessionDep, SettingsDep
from control_plane.api.mlserve.envelopes import created, with_data, with_status
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.tritons import TritonCreate, TritonUpdate
from control_plane.services.mlserve.tritons import TritonService

router = APIRouter(tags=["mlserve: tritons"])


@router.get("/tritons", operation_id="apiTritonList")
def list_tritons(
    _admin: AdminDep, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> dict[str, Any]:
    """List tritons with live state."""
    return {
        "tritons": [
            t.model_dump(mode="json") for t in TritonService(session, gateway, settings).list()
        ]
    }


@router.post("/tritons", status_code=201, operation_id="apiTritonCreate")
def create_triton(
    body: TritonCreate,
    _admin: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Register a triton (no probe on the way: ``state`` is ``unknown`` in this answer)."""
    service = TritonService(session, gateway, settings)
    new_id = service.create(body)
    return created(new_id, service.get(str(new_id), probe=False).model_dump(mode="json"))


@router.get("/tritons/{ident}", operation_id="apiTritonGet")
def get_triton(
    ident: str, _admin: AdminDep, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> dict[str, Any]:
    """One triton (its fields, also under ``data``)."""
    return with_data(TritonService(session, gateway, settings).get(ident).model_dump(mode="json"))


@router.patch("/tritons/{ident}", operation_id="apiTritonUpdate")
def update_triton(
    ident: str,
    body: TritonUpdate,
    _admin: AdminDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Change a triton's registration (``status`` plus the updated triton)."""
    service = TritonService(session, gateway, settings)
    triton_id = service.update(ident, body)
    return with_status(service.get(str(triton_id), probe=False).model_dump(mode="json"))


@router.delete("/tritons/{ident}", operation_id="apiTritonDelete")
def delete_triton(
    ident: str, _admin: AdminDep, session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> StatusOk:
    """Forget a triton and its load records."""
    TritonService(session, gateway, settings).delete(ident)
    return StatusOk()
