"""``inference.GRPCInferenceService`` over the platform's model applications.

Inference and per-model RPCs go straight to the model's own application (``p-v2-<model>``,
deployment ``TritonModel``) by DeploymentHandle, carrying the serialized request: one hop, no
control plane. Management RPCs go to the control plane (:mod:`deployments.grpc_management`).
Shared memory, trace and log settings are not implemented: they answer UNIMPLEMENTED, and the
server metadata does not list them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn
from urllib.parse import quote

import grpc
from ray import serve
from ray.serve.exceptions import DeploymentUnavailableError
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from deployments.contracts.app_args import TRITON_MODEL_DEPLOYMENT
from deployments.contracts.grpc import GrpcIngressArgs
from deployments.grpc_codec import statistics_message
from deployments.grpc_management import ControlPlaneClient, ManagementError, load_body

logger = logging.getLogger(__name__)
READY_TIMEOUT_S = 10.0
# Serve's gRPC handle transport refuses requests over 4 MiB on the target replica's server
# (RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH, read there); bigger requests take the actor
# call path (object store), which has no such limit.
BY_REFERENCE_BYTES = 4 * 1024 * 1024 - 64 * 1024
_FORWARDED = ("authorization", "x-api-key")


def peek_model(raw: bytes) -> tuple[str, str]:
    """``(model_name, model_version)`` of a serialized ``ModelInferRequest``, tensors skipped.

    Raises:
        ValueError: the bytes are not a protobuf message.
    """
    name = version = ""
    pos, end = 0, len(raw)

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            if pos >= end or shift > 63:
                raise ValueError("truncated varint")
            byte = raw[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    while pos < end:
        tag = varint()
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            varint()
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length = varint()
            if field in (1, 2):
                text = raw[pos : pos + length].decode("utf-8")
                name, version = (text, version) if field == 1 else (name, text)
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end:
            raise ValueError("truncated field")
    return name, version


def _is_loopback(peer: str) -> bool:
    host = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    if peer.startswith("unix:"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ModelRouter:
    """DeploymentHandles of the loaded models' applications, looked up once and cached."""

    def __init__(self, app_template: str) -> None:
        self.app_template = app_template
        self._handles: dict[str, Any] = {}
        self._variants: dict[tuple[str, str, bool, bool], Any] = {}

    async def handle(self, model: str) -> Any | None:
        """The model's handle, or None when no application serves it."""
        cached = self._handles.get(model)
        if cached is not None:
            return cached
        app = self.app_template.replace("{model}", model)
        try:  # a controller round trip (blocking): off the event loop
            found = await asyncio.to_thread(
                serve.get_deployment_handle, TRITON_MODEL_DEPLOYMENT, app
            )
        except (KeyError, serve.exceptions.RayServeException):
            return None
        self._handles[model] = found
        return found

    def forget(self, model: str) -> None:
        """Drop a handle whose application went away."""
        self._handles.pop(model, None)
        for key in [k for k in self._variants if k[0] == model]:
            del self._variants[key]

    def _variant(self, model: str, handle: Any, method: str, big: bool, stream: bool) -> Any:
        """``handle.options(...)`` once per model and call kind (it copies the handle)."""
        key = (model, method, big, stream)
        found = self._variants.get(key)
        if found is None:
            options: dict[str, Any] = {"method_name": method, "stream": stream}
            if big:
                options["_by_reference"] = True
            found = self._variants[key] = handle.options(**options)
        return found

    async def call(self, model: str, method: str, *args: Any) -> Any | None:
        """``method(*args)`` on the model's application; None when it is not served."""
        for _attempt in range(2):
            handle = await self.handle(model)
            if handle is None:
                return None
            big = any(isinstance(a, bytes) and len(a) > BY_REFERENCE_BYTES for a in args)
            try:
                return await self._variant(model, handle, method, big, False).remote(*args)
            except DeploymentUnavailableError:
                self.forget(model)
            except Exception as exc:  # the replica died mid-call, a transport limit...
                logger.warning("%s on %s failed: %s", method, model, exc)
                return ("UNAVAILABLE", f"model '{model}' failed to answer: {exc}")
        return None

    async def stream(self, model: str, raw: bytes) -> AsyncIterator[bytes] | None:
        """The response stream of ``grpc_stream(raw)``; None when the model is not served."""
        handle = await self.handle(model)
        if handle is None:
            return None
        big = len(raw) > BY_REFERENCE_BYTES
        variant = self._variant(model, handle, "grpc_stream", big, True)
        return variant.remote(raw)  # type: ignore[no-any-return]


async def fail(context: Any, code: Any, message: str) -> NoReturn:
    """End the call with ``code`` (``context.abort`` raises; this tells the type checker)."""
    await context.abort(code, message)
    raise AssertionError("context.abort returned")


async def _abort(context: Any, exc: ManagementError) -> NoReturn:
    await fail(context, exc.code, exc.message)


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """The RPCs; unimplemented ones inherit the generated UNIMPLEMENTED answer."""

    def __init__(self, args: GrpcIngressArgs, behind_front: bool = False) -> None:
        self.args = args
        # behind HAProxy this server listens on loopback only and the front sets
        # x-forwarded-for to the client's address (replacing any the client sent)
        self.behind_front = behind_front
        self.models = ModelRouter(args.app_template)
        self.control = ControlPlaneClient(args.control_plane_url, args.request_timeout_s)

    # -- health and metadata ---------------------------------------------------------------
    async def ServerLive(self, _request: Any, _context: Any) -> pb.ServerLiveResponse:
        """Live while the ingress answers."""
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, _request: Any, _context: Any) -> pb.ServerReadyResponse:
        """Ready when the control plane says every loaded model is (strict readiness)."""
        try:
            status, _ = await self.control.request("GET", "/v2/health/ready")
        except ManagementError:
            return pb.ServerReadyResponse(ready=False)
        return pb.ServerReadyResponse(ready=status == 200)

    async def ServerMetadata(self, _request: Any, context: Any) -> pb.ServerMetadataResponse:
        """Name, version and extensions, as ``GET /v2`` reports them."""
        try:
            body = await self.control.call("GET", "/v2")
        except ManagementError as exc:
            await _abort(context, exc)
        return pb.ServerMetadataResponse(
            name=body["name"], version=body["version"], extensions=body["extensions"]
        )

    async def ModelReady(self, request: Any, _context: Any) -> pb.ModelReadyResponse:
        """``ready: false`` (not an error) for unknown, unloaded or unserved versions."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                ready = await self.models.call(request.name, "grpc_ready", request.version)
        except TimeoutError:
            ready = False
        return pb.ModelReadyResponse(ready=ready is True)

    async def _per_model(self, name: str, version: str, method: str, context: Any) -> bytes:
        answer = await self.models.call(name, method, version)
        if answer is None:
            await _abort(context, await self.control.model_error(name, version))
        code, payload = answer
        if code != "OK":
            await fail(context, getattr(grpc.StatusCode, code), payload)
        return bytes(payload)

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        """The model's inputs, outputs, versions and platform."""
        raw = await self._per_model(request.name, request.version, "grpc_metadata", context)
        return pb.ModelMetadataResponse.FromString(raw)

    async def ModelConfig(self, request: Any, context: Any) -> pb.ModelConfigResponse:
        """The model's effective configuration."""
        raw = await self._per_model(request.name, request.version, "grpc_config", context)
        return pb.ModelConfigResponse.FromString(raw)

    async def ModelStatistics(self, request: Any, context: Any) -> pb.ModelStatisticsResponse:
        """One model's statistics from its application; every model's from the control plane."""
        if not request.name:
            try:
                body = await self.control.call("GET", "/v2/models/stats")
            except ManagementError as exc:
                await _abort(context, exc)
            return statistics_message(body)
        answer = await self.models.call(request.name, "grpc_statistics", request.version)
        if answer is None:
            await fail(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"requested model '{request.name}' is not available",
            )
        code, payload = answer
        if code != "OK":
            await fail(context, getattr(grpc.StatusCode, code), payload)
        return pb.ModelStatisticsResponse.FromString(payload)

    # -- inference (raw bytes in and out) ----------------------------------------------------
    async def ModelInfer(self, raw: bytes, context: Any) -> bytes:
        """One inference on the model's application; the ingress never decodes tensors."""
        try:
            name, version = peek_model(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            await fail(context, grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {exc}")
        answer = await self.models.call(name, "grpc_infer", raw)
        if answer is None:
            await _abort(context, await self.control.model_error(name, version))
        code, payload = answer
        if code != "OK":
            await fail(context, getattr(grpc.StatusCode, code), payload)
        return bytes(payload)

    async def _stream_one(self, raw: bytes, out: asyncio.Queue[bytes | None]) -> None:
        try:
            name, version = peek_model(raw)
            responses = await self.models.stream(name, raw)
            if responses is None:
                error = await self.control.model_error(name, version)
                reply = pb.ModelStreamInferResponse(error_message=error.message)
                reply.infer_response.id = pb.ModelInferRequest.FromString(raw).id
                await out.put(reply.SerializeToString())
                return
            async for item in responses:
                await out.put(item)
        except Exception as exc:  # one request's failure never ends the stream
            if isinstance(exc, DeploymentUnavailableError):
                self.models.forget(name)
            logger.info("stream request failed: %s", exc)
            message = exc.message if isinstance(exc, ManagementError) else str(exc)
            await out.put(pb.ModelStreamInferResponse(error_message=message).SerializeToString())

    async def ModelStreamInfer(
        self, requests: AsyncIterator[bytes], _context: Any
    ) -> AsyncIterator[bytes]:
        """Many requests on one stream, each answered as its model produces responses."""
        out: asyncio.Queue[bytes | None] = asyncio.Queue()
        pending: set[asyncio.Task[None]] = set()

        async def read() -> None:
            async for raw in requests:
                task = asyncio.create_task(self._stream_one(raw, out))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while pending:
                await asyncio.gather(*list(pending), return_exceptions=True)
            await out.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await out.get()) is not None:
                yield item
            await reader
        finally:
            for task in [reader, *pending]:
                task.cancel()
            with contextlib.suppress(BaseException):
                await reader

    # -- repository -------------------------------------------------------------------------
    async def _management(self, context: Any) -> dict[str, str]:
        """Headers for a management call; refuse remote peers unless allowed or credentialed."""
        metadata = dict(context.invocation_metadata() or ())
        headers = {k: str(v) for k, v in metadata.items() if k in _FORWARDED}
        remote = not self.args.management_allow_remote and not _is_loopback(self._peer(context))
        if remote and not headers:
            await fail(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                "management API is only reachable from localhost",
            )
        return headers

    def _peer(self, context: Any) -> str:
        """The client's address: the front's x-forwarded-for when behind it, else the peer."""
        peer = str(context.peer())
        if not self.behind_front:
            return peer
        for key, value in context.invocation_metadata() or ():
            if key == "x-forwarded-for" and _is_loopback(peer):
                return f"ipv6:[{value}]:0" if ":" in str(value) else f"ipv4:{value}:0"
        return peer

    async def RepositoryIndex(self, request: Any, context: Any) -> pb.RepositoryIndexResponse:
        """Every repository model and its state."""
        headers = await self._management(context)
        try:
            body = await self.control.call(
                "POST", "/v2/repository/index", {"ready": request.ready}, headers
            )
        except ManagementError as exc:
            await _abort(context, exc)
        reply = pb.RepositoryIndexResponse()
        for entry in body or []:
            reply.models.add(**{k: str(v) for k, v in entry.items()})
        return reply

    async def RepositoryModelLoad(
        self, request: Any, context: Any
    ) -> pb.RepositoryModelLoadResponse:
        """Load (or reload) a model, with ``config`` and ``file:`` overrides; synchronous."""
        headers = await self._management(context)
        path = f"/v2/repository/models/{quote(request.model_name, safe='')}/load"
        try:
            await self.control.call("POST", path, load_body(request), headers)
        except ManagementError as exc:
            await _abort(context, exc)
        self.models.forget(request.model_name)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: Any, context: Any
    ) -> pb.RepositoryModelUnloadResponse:
        """Unload a model (an unknown one is fine, as on Triton)."""
        headers = await self._management(context)
        path = f"/v2/repository/models/{quote(request.model_name, safe='')}/unload"
        body = load_body(request)  # same parameter map (unload_dependents)
        try:
            await self.control.call("POST", path, body, headers)
        except ManagementError as exc:
            await _abort(context, exc)
        self.models.forget(request.model_name)
        return pb.RepositoryModelUnloadResponse()


def method_handlers(servicer: InferenceServicer) -> grpc.GenericRpcHandler:
    """The service's handlers: protobufs for every RPC, raw bytes for the two inference ones."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    handlers = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        raw = method.name in ("ModelInfer", "ModelStreamInfer")
        kwargs: dict[str, Any] = {
            "request_deserializer": None if raw else request_type.FromString,
            "response_serializer": None if raw else response_type.SerializeToString,
        }
        behaviour = getattr(servicer, method.name)
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(behaviour, **kwargs)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(behaviour, **kwargs)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
