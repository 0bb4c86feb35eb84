"""``/healthz``: liveness of the control plane and its database."""

from __future__ import annotations

from fastapi import APIRouter

from control_plane.api.deps import SessionDep
from control_plane.services.health import check_database

router = APIRouter(tags=["ops"])


@router.get("/healthz", operation_id="get_healthz")
def get_healthz(session: SessionDep) -> dict[str, str]:
    """Answer 200 when the control plane and its database respond."""
    check_database(session)
    return {"status": "ok"}
