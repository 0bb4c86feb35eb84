"""TorchServe's success bodies: pretty-printed JSON (2-space indent) plus a trailing newline.

Also where a command's outcome becomes its HTTP status (200 done, 202 accepted).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from control_plane.errors import BadRequestError
from control_plane.schemas.torchserve.management import StatusMessage
from control_plane.services.torchserve.results import Outcome, StatusResult

T = TypeVar("T", bound=BaseModel)


class PrettyJSONResponse(JSONResponse):
    """JSON rendered like TorchServe's frontend (GSON pretty printing)."""

    def render(self, content: Any) -> bytes:
        """Indent 2, trailing newline."""
        return (json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


STATUS_BY_OUTCOME = {Outcome.DONE: 200, Outcome.ACCEPTED: 202}

# OpenAPI entry of the routes that may answer 202 (their 200 body comes from response_model).
ACCEPTED_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"model": StatusMessage, "description": "Accepted: workers are updated in the background."}
}


def status_message(result: StatusResult, response: Response) -> StatusMessage:
    """``{"status": message}``, with the HTTP status of the command's outcome."""
    response.status_code = STATUS_BY_OUTCOME[result.outcome]
    return StatusMessage(status=result.message)


async def params_from(request: Request) -> dict[str, Any]:
    """Query parameters, overlaid by a JSON object body (TorchServe accepts both)."""
    params: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        body = await request.body()
        if body.strip():
            try:
                loaded = json.loads(body)
            except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
                loaded = None
            if isinstance(loaded, dict):
                params.update({k: v for k, v in loaded.items() if v is not None})
    return params


def parse_params(schema: type[T], params: dict[str, Any]) -> T:
    """Validate parameters into ``schema``; malformed values are TorchServe's 400.

    Raises:
        BadRequestError: a value has the wrong type or range.
    """
    try:
        return schema.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise BadRequestError(
            f"Invalid parameter: {problems}", ts_type="BadRequestException"
        ) from exc
