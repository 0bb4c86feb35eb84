"""``/api/tritons``: registered v2 inference servers."""

from __future__ import annotations

from control_plane.api.gated_router import GatedRouter
from control_plane.api.mlserve.deps import AdminDep, TritonServiceDep
from control_plane.api.mlserve.envelopes import created, with_data, with_status
from control_plane.schemas.mlserve.common import StatusOk
from control_plane.schemas.mlserve.tritons import (
    TritonCreate,
    TritonCreated,
    TritonDetail,
    TritonList,
    TritonUpdate,
    TritonUpdated,
)

router = GatedRouter(tags=["mlserve: tritons"])


@router.get("/tritons", operation_id="apiTritonList")
def list_tritons(_admin: AdminDep, tritons: TritonServiceDep) -> TritonList:
    """List tritons with live state."""
    return TritonList(tritons=tritons.list())


@router.post("/tritons", status_code=201, operation_id="apiTritonCreate")
def create_triton(body: TritonCreate, _admin: AdminDep, tritons: TritonServiceDep) -> TritonCreated:
    """Register a triton (no probe on the way: ``state`` is ``unknown`` in this answer)."""
    new_id = tritons.create(body)
    return created(new_id, tritons.get(str(new_id), probe=False), TritonCreated)


@router.get("/tritons/{ident}", operation_id="apiTritonGet")
def get_triton(ident: str, _admin: AdminDep, tritons: TritonServiceDep) -> TritonDetail:
    """One triton (its fields, also under ``data``)."""
    return with_data(tritons.get(ident), TritonDetail)


@router.patch("/tritons/{ident}", operation_id="apiTritonUpdate")
def update_triton(
    ident: str, body: TritonUpdate, _admin: AdminDep, tritons: TritonServiceDep
) -> TritonUpdated:
    """Change a triton's registration (``status`` plus the updated triton)."""
    triton_id = tritons.update(ident, body)
    return with_status(tritons.get(str(triton_id), probe=False), TritonUpdated)


@router.delete("/tritons/{ident}", operation_id="apiTritonDelete")
def delete_triton(ident: str, _admin: AdminDep, tritons: TritonServiceDep) -> StatusOk:
    """Forget a triton and its load records."""
    tritons.delete(ident)
    return StatusOk()
