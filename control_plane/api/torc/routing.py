"""How Torc routes answer: absent fields stay absent, errors are documented once.

Routes declare a ``response_model``, except those answering up to 10,000 items (lists,
``bulk_jobs``): validating every item cost more than the query (``GET /jobs``, 10,000 jobs:
180 ms without, 340 ms with), so their model only documents the body (``documented``) and
``tests/integration/torc/test_openapi.py`` validates real bodies against the schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, TypeAdapter
from starlette.types import Message

from control_plane.api.gated_router import GatedRouter
from control_plane.api.one_hop_route import OneHopRoute
from control_plane.schemas.torc.base import TorcError
from control_plane.schemas.torc.generation import (
    GENERATION_HEADER,
    ApiGeneration,
    detect_generation,
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": TorcError, "description": "Unknown id (`Job not found with ID: 7`)."},
    422: {
        "model": TorcError,
        "description": "A rule violation, or a malformed body or query parameter.",
    },
}


class TorcRoute(OneHopRoute):
    """A Torc route: fields a response leaves out are omitted, not sent as null.

    Torc's serde omits nulls (``scheduler_id`` aside), so the services build each body with
    the fields it has; ``response_model_exclude_unset`` keeps that shape through the response
    model.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model_exclude_unset"] = True
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Any]:
        """The handler, hiding ``pending_failed`` from v0.12 clients.

        torc-client 0.8.0's ``JobStatus`` lacks ``pending_failed`` (a job or result carrying
        it fails to parse), so v0.12 clients see such a job as ``failed``.
        """
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def route(request: Request) -> Response:
            if takes_body:
                request = await _as_json(request)
            response: Response = await handler(request)
            body = getattr(response, "body", None)
            if (
                isinstance(body, bytes)
                and _PENDING_FAILED in body
                and detect_generation(
                    request.headers.get("user-agent"), request.headers.get(GENERATION_HEADER)
                )
                is ApiGeneration.V0_12
            ):
                response.body = body.replace(_PENDING_FAILED, _FAILED)
                response.headers["content-length"] = str(len(response.body))
            return response

        return route


async def _as_json(request: Request) -> Request:
    """The request with its body read as JSON whatever its content type.

    torc's server parses a body without looking at its content type, and ``curl -d '{}'``
    sends ``application/x-www-form-urlencoded``: such a body is handed on as JSON when it
    parses, and dropped when it does not (so an optional body is ignored and a required one
    is reported missing).
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media.endswith(("/json", "+json")) or media.startswith("multipart/"):
        return request
    body = await request.body()
    if not body:
        return request
    try:
        json.loads(body)
    except ValueError:
        body = b""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", b"application/json"))

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({**request.scope, "headers": headers}, receive)


_PENDING_FAILED = b'"status":"pending_failed"'
_FAILED = b'"status":"failed"'


def torc_router(tag: str) -> GatedRouter:
    """A router for one group of Torc routes."""
    return GatedRouter(tags=[tag], route_class=TorcRoute, responses=ERROR_RESPONSES)


_BODY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """Route options for a large body: ``model`` documents it, the body is not validated."""
    return {"response_model": None, "responses": {200: {"model": model}}}


def json_body(body: dict[str, Any]) -> Response:
    """The response of a ``documented`` route: the service's body, serialized as it is."""
    return Response(_BODY.dump_json(body), media_type="application/json")
