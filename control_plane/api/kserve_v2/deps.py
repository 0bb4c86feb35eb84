"""Dependencies of the v2 routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel

from control_plane.api.deps import GatewayDep, SessionDep, SettingsDep
from control_plane.errors import BadRequestError
from control_plane.services.triton_models import TritonModelService


async def get_model_service(
    session: SessionDep, gateway: GatewayDep, settings: SettingsDep
) -> TritonModelService:
    """The repository/model service for this request."""
    return TritonModelService(session, gateway, settings)


ModelServiceDep = Annotated[TritonModelService, Depends(get_model_service)]


async def read_json_body(request: Request) -> dict[str, Any]:
    """Parse the raw body as JSON whatever the Content-Type (tritonclient sends none).

    An empty body is an empty object.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"failed to parse the request JSON buffer: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError("failed to parse the request JSON buffer: expected a JSON object")
    return body


JsonBody = Annotated[dict[str, Any], Depends(read_json_body)]


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace ``#/$defs/...`` references by their targets (they do not resolve in OpenAPI)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**defs[ref.removeprefix("#/$defs/")], **rest})
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


def optional_body(schema: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a JSON body the route reads itself (``read_json_body``); it may be empty."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _inline_defs(schema.model_json_schema())}},
        }
    }
