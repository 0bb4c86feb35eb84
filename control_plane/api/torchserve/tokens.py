"""TorchServe token rotation: ``/token?type=management|inference`` (with the API key)."""

from __future__ import annotations

from fastapi import Response

from control_plane.api.gated_router import GatedRouter
from control_plane.api.torchserve.deps import AuthorizationHeader, TokenServiceDep

router = GatedRouter()


# GET and POST, as TorchServe; one operation id names one method, so POST stays out of OpenAPI.
@router.get(
    "/token",
    operation_id="rotate_token",
    responses={200: {"description": "Rotated: the new key is in key_file.json (body a newline)."}},
)
@router.post("/token", include_in_schema=False)
def rotate_token(
    service: TokenServiceDep,
    authorization: AuthorizationHeader = None,
    type: str | None = None,
) -> Response:
    """Regenerate the management or inference key (TorchServe token authorization)."""
    service.rotate(type, authorization)
    return Response(b"\n", media_type="application/json")
