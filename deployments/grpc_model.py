"""The model server's gRPC-shaped entry points, called by the gRPC ingress by DeploymentHandle.

A mixin of :class:`deployments.model_server.TritonModelServer` (the attributes it uses are set
there). Requests and responses travel as serialized protobufs (``bytes``) so the ingress never
decodes tensors; each answer is ``(code, payload)`` where ``code`` names a ``grpc.StatusCode``
(``"OK"`` with the serialized response, else the error message). Inference is counted in the
model's statistics exactly as an HTTP ``/infer`` is.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError
from tritonclient.grpc import service_pb2 as pb

from deployments.contracts.errors import InferenceServerError, ModelNotFound
from deployments.grpc_codec import (
    EMPTY_FINAL,
    FINAL,
    config_message,
    decode_infer,
    encode_infer,
    metadata_message,
    set_parameter,
    statistics_message,
)

if TYPE_CHECKING:
    from deployments.contracts.specs import ModelSpec
    from deployments.contracts.stats import StatsBook
    from deployments.v2_codec import DecodedRequest

GrpcAnswer = tuple[str, bytes | str]
CODE_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}
DECOUPLED_UNARY = "ModelInfer RPC doesn't support models with decoupled transaction policy"


def grpc_code(exc: InferenceServerError) -> str:
    """The gRPC status name of a data-plane error (its HTTP status, mapped as Triton does)."""
    return CODE_BY_STATUS.get(exc.status, "INTERNAL")


class GrpcModelEndpoints:
    """``grpc_*`` methods over the server's backends, batcher and counters."""

    spec: ModelSpec
    backends: dict[int, Any]
    book: StatsBook
    latest: int
    response_parameters: dict[str, Any] | None
    reporter: Any
    retirement: Any

    # TritonModelServer._counted_infer(version, start, decode, encode): decode, run, encode, count
    _counted_infer: Callable[..., Awaitable[Any]]

    def _responses(self, version: int, decoded: DecodedRequest) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def stats(self, version: int | None = None) -> dict[str, Any]:
        """Triton statistics of this model (the server's own method)."""
        raise NotImplementedError

    def _grpc_version(self, text: str) -> int:
        if not text:
            return self.latest
        if not text.isdigit() or int(text) not in self.backends:
            raise ModelNotFound(
                f"Request for unknown model: '{self.spec.name}' version {text} is not found"
            )
        return int(text)

    # -- metadata ------------------------------------------------------------------------
    async def grpc_ready(self, version: str = "") -> bool:
        """ModelReady: whether this replica serves ``version`` (latest when empty)."""
        return not version or (version.isdigit() and int(version) in self.backends)

    async def grpc_metadata(self, version: str = "") -> GrpcAnswer:
        """ModelMetadata as a serialized ``ModelMetadataResponse``."""
        try:
            versions = [self._grpc_version(version)] if version else sorted(self.backends)
        except ModelNotFound as exc:
            return ("NOT_FOUND", exc.message)
        return ("OK", metadata_message(self.spec.metadata(versions)).SerializeToString())

    async def grpc_config(self, version: str = "") -> GrpcAnswer:
        """ModelConfig as a serialized ``ModelConfigResponse``."""
        try:
            self._grpc_version(version)
        except ModelNotFound as exc:
            return ("NOT_FOUND", exc.message)
        return ("OK", config_message(self.spec.config).SerializeToString())

    async def grpc_statistics(self, version: str = "") -> GrpcAnswer:
        """ModelStatistics of this model as a serialized ``ModelStatisticsResponse``."""
        if version and not (version.isdigit() and int(version) in self.backends):
            return (
                "INVALID_ARGUMENT",
                f"requested model version is not available for model '{self.spec.name}'",
            )
        stats = await self.stats(int(version) if version else None)
        return ("OK", statistics_message(stats).SerializeToString())

    # -- inference -----------------------------------------------------------------------
    async def grpc_infer(self, raw: bytes) -> GrpcAnswer:
        """ModelInfer: a serialized ``ModelInferRequest`` in, ``ModelInferResponse`` out."""
        self.reporter.ensure_started()
        if self.retirement.refuses():  # unloaded: what the control plane answers meanwhile
            return (
                "NOT_FOUND",
                (f"Request for unknown model: '{self.spec.name}' has no available versions"),
            )
        try:
            request = pb.ModelInferRequest.FromString(raw)
        except DecodeError as exc:
            return ("INVALID_ARGUMENT", f"failed to parse ModelInferRequest: {exc}")
        try:
            if self.spec.decoupled:
                self._grpc_version(request.model_version)
                return ("UNIMPLEMENTED", DECOUPLED_UNARY)
            response = await self._grpc_unary(request)
        except InferenceServerError as exc:
            return (grpc_code(exc), exc.message)
        return ("OK", response.SerializeToString())

    async def _grpc_unary(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        """One non-decoupled request, counted as an HTTP ``/infer`` is."""
        start = time.perf_counter_ns()
        version = self._grpc_version(request.model_version)
        return await self._counted_infer(
            version,
            start,
            lambda: decode_infer(request, self.spec),
            lambda decoded, result: encode_infer(
                self.spec.name, version, decoded, result, self.response_parameters
            ),
        )

    def _stream_error(self, request: pb.ModelInferRequest, message: str, final: bool) -> bytes:
        reply = pb.ModelStreamInferResponse(error_message=message)
        reply.infer_response.id = request.id
        if final:  # an error after the model started answering (reference §5.2)
            reply.infer_response.model_name = self.spec.name
            reply.infer_response.parameters[FINAL].bool_param = True
        raw: bytes = reply.SerializeToString()
        return raw

    async def grpc_stream(self, raw: bytes) -> AsyncIterator[bytes]:
        """ModelStreamInfer for one request: serialized ``ModelStreamInferResponse``s.

        A non-decoupled model answers once (``triton_final_response`` true); a decoupled model
        answers once per response it sends, then, when the request set
        ``triton_enable_empty_final_response``, an empty final message. Errors are messages with
        ``error_message``, never a failed call: the stream goes on serving.
        """
        self.reporter.ensure_started()
        try:
            request = pb.ModelInferRequest.FromString(raw)
        except DecodeError as exc:
            yield pb.ModelStreamInferResponse(
                error_message=f"failed to parse ModelInferRequest: {exc}"
            ).SerializeToString()
            return
        if not self.spec.decoupled:
            try:
                response = await self._grpc_unary(request)
            except InferenceServerError as exc:
                yield self._stream_error(request, exc.message, final=False)
                return
            response.parameters[FINAL].bool_param = True
            yield pb.ModelStreamInferResponse(infer_response=response).SerializeToString()
            return
        async for item in self._decoupled(request):
            yield item

    async def _decoupled(self, request: pb.ModelInferRequest) -> AsyncIterator[bytes]:
        try:
            version = self._grpc_version(request.model_version)
            decoded = decode_infer(request, self.spec)
        except InferenceServerError as exc:
            yield self._stream_error(request, exc.message, final=False)
            return
        empty_final = request.parameters[EMPTY_FINAL].bool_param
        async for result in self._responses(version, decoded):
            if isinstance(result, Exception):
                message = (
                    result.message if isinstance(result, InferenceServerError) else str(result)
                )
                yield self._stream_error(request, message, final=True)
                return
            try:
                response = encode_infer(self.spec.name, version, decoded, result)
            except InferenceServerError as exc:
                yield self._stream_error(request, exc.message, final=True)
                return
            set_parameter(response.parameters[FINAL], False)
            yield pb.ModelStreamInferResponse(infer_response=response).SerializeToString()
        if empty_final:
            last = pb.ModelStreamInferResponse()
            last.infer_response.model_name = self.spec.name
            last.infer_response.id = request.id
            last.infer_response.parameters[FINAL].bool_param = True
            yield last.SerializeToString()
