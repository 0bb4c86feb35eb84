"""The model server's pipeline endpoints: generate, generate_stream and the BLS entry points.

A mixin of :class:`deployments.model_server.TritonModelServer` (the attributes it uses are set
there): ``/generate`` and ``/generate_stream`` on the model's own application (the ingress
routes ``/v2/models/<m>/...`` straight here), and ``infer_tensors``/``infer_tensors_stream``,
the methods BLS callers reach by DeploymentHandle with numpy tensors (no HTTP codec).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from deployments.backends.base import InferenceRequest
from deployments.contracts.datatypes import datatype_of
from deployments.contracts.errors import InferenceError, InferenceServerError, InvalidInput
from deployments.v2_codec import DecodedRequest, check_input, decompress
from deployments.v2_generate import (
    SSE_MEDIA_TYPE,
    decode_generate,
    dumps,
    generate_response,
    sse_event,
)

if TYPE_CHECKING:
    from deployments.contracts.specs import ModelSpec
    from deployments.contracts.stats import StatsBook

ONE_RESPONSE = (
    "generate expects model to produce exactly 1 response, use generate stream for model that "
    "generates various number of responses"
)


class PipelineEndpoints:
    """Generate, streaming and BLS entry points over the server's backends and counters."""

    spec: ModelSpec
    backends: dict[int, Any]
    book: StatsBook
    response_parameters: dict[str, Any] | None

    def _generate_body(self, version: int, request_id: str, outputs: Any) -> dict[str, Any]:
        """Triton's flat generate body; an ensemble's carries its sequence parameters too."""
        body = generate_response(self.spec.name, version, request_id, outputs)
        if self.response_parameters:
            body = dict(sorted({**body, **self.response_parameters}.items()))
        return body

    async def _run(
        self, version: int, decoded: DecodedRequest, decoded_at: int
    ) -> tuple[Any, int, int]:
        raise NotImplementedError

    # -- every response of one request ----------------------------------------------------
    async def _responses(self, version: int, decoded: DecodedRequest) -> AsyncIterator[Any]:
        """Each result (outputs or an exception) of one request, as the model produces it."""
        start = time.perf_counter_ns()
        ok = True
        try:
            if self.spec.decoupled:
                infer_start = time.perf_counter_ns()
                async for result in self.backends[version].stream(decoded.request):
                    ok = ok and not isinstance(result, Exception)
                    yield result
                self.book.execution(
                    self.spec.name,
                    version,
                    batch_size=decoded.batch_size,
                    infer_ns=time.perf_counter_ns() - infer_start,
                )
            else:
                result, _queue, _infer = await self._run(version, decoded, start)
                ok = not isinstance(result, Exception)
                yield result
        finally:
            self.book.request(
                self.spec.name,
                version,
                ok=ok,
                total_ns=time.perf_counter_ns() - start,
                batch=decoded.batch_size,
            )

    # -- generate extension ---------------------------------------------------------------
    async def _generate(self, request: Request, version: int, *, stream: bool) -> Response:
        body = decompress(await request.body(), request.headers.get("content-encoding"))
        try:
            decoded = decode_generate(body, self.spec)
        except InvalidInput:
            self.book.request(self.spec.name, version, ok=False, total_ns=0)
            raise
        if stream:
            return StreamingResponse(self._events(version, decoded), media_type=SSE_MEDIA_TYPE)
        results = [r async for r in self._responses(version, decoded)]
        if len(results) != 1:
            raise InvalidInput(ONE_RESPONSE)
        [result] = results
        if isinstance(result, Exception):
            if self.spec.decoupled:
                raise InvalidInput(ONE_RESPONSE)
            raise (
                result if isinstance(result, InferenceServerError) else InferenceError(str(result))
            )
        payload = self._generate_body(version, decoded.request.id, result)
        return Response(dumps(payload), media_type="application/json")

    async def _events(self, version: int, decoded: DecodedRequest) -> AsyncIterator[bytes]:
        async for result in self._responses(version, decoded):
            if isinstance(result, Exception):
                message = (
                    result.message if isinstance(result, InferenceServerError) else str(result)
                )
                yield sse_event({"error": message})
                return
            yield sse_event(self._generate_body(version, decoded.request.id, result))

    # -- BLS callee -----------------------------------------------------------------------
    def _bls_request(
        self,
        version: int,
        inputs: dict[str, np.ndarray],
        requested: list[str],
        request_id: str,
        parameters: str | dict[str, Any],
    ) -> tuple[int, DecodedRequest] | tuple[str, Any]:
        """Validate a BLS call as Triton does; (version, request) or an error tuple."""
        served = version if version > 0 else max(self.backends)
        if served not in self.backends:
            return ("not_ready", self.spec.name)
        try:
            for name, array in inputs.items():
                check_input(name, datatype_of(np.asarray(array)), tuple(array.shape), self.spec)
            required = self.spec.required_inputs
            missing = [n for n in required if n not in inputs]
            if missing:
                raise InvalidInput(
                    f"[request id: <id_unknown>] expected {len(required)} inputs but got "
                    f"{len(inputs)} inputs for model '{self.spec.name}'. Got input(s) "
                    f"{sorted(inputs)}, but missing required input(s) {missing}. Please provide "
                    "all required input(s)."
                )
            for name in requested:
                if name not in self.spec.output_names:
                    raise InvalidInput(
                        f"unexpected inference output '{name}' for model '{self.spec.name}'"
                    )
        except InvalidInput as exc:
            return ("invalid", exc.message)
        params = json.loads(parameters) if isinstance(parameters, str) else parameters
        batch = next(iter(inputs.values())).shape[0] if inputs and self.spec.max_batch_size else 1
        request = InferenceRequest(
            inputs=dict(inputs),
            requested_outputs=list(requested) or None,
            id=request_id,
            parameters=params or {},
        )
        names = list(requested) or self.spec.output_names
        return served, DecodedRequest(request=request, outputs=names, batch_size=batch)

    @staticmethod
    def _bls_result(result: Any, names: list[str]) -> tuple[str, Any]:
        if isinstance(result, Exception):
            message = result.message if isinstance(result, InferenceServerError) else str(result)
            return ("error", message)
        return ("ok", {k: v for k, v in result.items() if k in names})

    async def infer_tensors(
        self,
        version: int,
        inputs: dict[str, np.ndarray],
        requested: list[str],
        request_id: str = "",
        parameters: str | dict[str, Any] = "{}",
    ) -> tuple[str, Any]:
        """A BLS call (or an ensemble step), counted in this model's statistics.

        Returns ``("ok", outputs)``, ``("invalid"|"error", message)`` (a bad request, a failed
        execution) or ``("not_ready", model)``.
        """
        prepared = self._bls_request(version, inputs, requested, request_id, parameters)
        if isinstance(prepared[0], str):
            return prepared
        served, decoded = prepared
        assert isinstance(served, int)
        assert isinstance(decoded, DecodedRequest)
        if self.spec.decoupled:
            results = [r async for r in self._responses(served, decoded)]
            if len(results) != 1:
                return ("error", ONE_RESPONSE)
            return self._bls_result(results[0], decoded.outputs)
        [result] = [r async for r in self._responses(served, decoded)]
        return self._bls_result(result, decoded.outputs)

    async def infer_tensors_batch(
        self, calls: list[tuple[int, dict[str, np.ndarray], list[str], str, Any]]
    ) -> list[tuple[str, Any]]:
        """Several :meth:`infer_tensors` calls that shared one hop, run concurrently.

        An ensemble's coalesced step calls: each is its own request here (its own statistics,
        and the dynamic batcher, if configured, groups them as it would separate calls).
        """
        return list(await asyncio.gather(*(self.infer_tensors(*call) for call in calls)))

    async def infer_tensors_stream(
        self,
        version: int,
        inputs: dict[str, np.ndarray],
        requested: list[str],
        request_id: str = "",
        parameters: str | dict[str, Any] = "{}",
    ) -> AsyncIterator[tuple[str, Any]]:
        """A decoupled BLS call: one tuple per response (see :meth:`infer_tensors`)."""
        prepared = self._bls_request(version, inputs, requested, request_id, parameters)
        if isinstance(prepared[0], str):
            yield prepared
            return
        served, decoded = prepared
        assert isinstance(served, int)
        assert isinstance(decoded, DecodedRequest)
        async for result in self._responses(served, decoded):
            yield self._bls_result(result, decoded.outputs)
