"""The gRPC ingress's management RPCs, answered by the control plane's v2 HTTP API.

Repository index/load/unload, server metadata and readiness, all-model statistics and the
error texts of models that no application serves are the control plane's business (its
database is the desired state); the ingress reaches them over HTTP, the same requests
``tritonclient.http`` sends, so both protocols give one answer. Inference never comes here.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc
from tritonclient.grpc import service_pb2 as pb

from deployments.grpc_codec import parameter_value

logger = logging.getLogger(__name__)

# HTTP status of a control-plane answer -> gRPC status (Triton maps 400/500 the same way).
CODE_BY_HTTP = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class ManagementError(Exception):
    """A control-plane answer that is not a success, as a gRPC status and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _message(status: int, text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text or f"HTTP {status}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # the platform's envelope (e.g. the management guard)
        return str(error.get("message", error))
    return str(error) if error is not None else text


def load_body(request: pb.RepositoryModelLoadRequest) -> dict[str, Any]:
    """The HTTP load body of a gRPC load: ``config`` as given, ``file:`` contents as base64."""
    parameters: dict[str, Any] = {}
    for key, param in request.parameters.items():
        value = parameter_value(param)
        if key.startswith("file:") and isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        parameters[key] = value
    return {"parameters": parameters} if parameters else {}


class ControlPlaneClient:
    """A small aiohttp client of the control plane's v2 routes (one per ingress replica)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """One call: ``(status, text)``; an unreachable control plane is UNAVAILABLE.

        Raises:
            ManagementError: the control plane cannot be reached.
        """
        data = json.dumps(body).encode() if body is not None else None
        try:
            async with self._client().request(
                method, self.base_url + path, data=data, headers=headers or {}
            ) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("control plane %s %s failed: %s", method, path, exc)
            raise ManagementError(
                grpc.StatusCode.UNAVAILABLE, f"the control plane is unreachable: {exc}"
            ) from None

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """A call whose non-2xx answer is raised; returns the JSON body (None when empty).

        Raises:
            ManagementError: a non-2xx answer, with its status mapped and Triton's message.
        """
        status, text = await self.request(method, path, body, headers)
        if status >= 300:
            code = CODE_BY_HTTP.get(status, grpc.StatusCode.INTERNAL)
            raise ManagementError(code, _message(status, text))
        return json.loads(text) if text.strip() else None

    async def model_error(self, name: str, version: str) -> ManagementError:
        """Why ``name`` has no serving application: the control plane's metadata answer."""
        path = f"/v2/models/{quote(name, safe='')}"
        if version:
            path += f"/versions/{quote(version, safe='')}"
        status, text = await self.request("GET", path)
        if status < 300:  # it came up meanwhile: the caller may retry
            return ManagementError(grpc.StatusCode.UNAVAILABLE, f"model '{name}' is starting")
        return ManagementError(
            CODE_BY_HTTP.get(status, grpc.StatusCode.INTERNAL), _message(status, text)
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
