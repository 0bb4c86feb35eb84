"""TritonModelServer: one Serve deployment serving every loaded version of one model.

Its application sits at route prefix ``/v2/models/<name>``, so the Serve ingress hands it
metadata, ready, config, stats and infer requests for the model directly (no control-plane hop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from deployments.backends import ModelBackend, load_backend
from deployments.backends.ensemble import EnsembleBackend
from deployments.contracts.app_args import EnsembleAppArgs, TritonModelAppArgs
from deployments.contracts.artifacts import localized
from deployments.contracts.errors import (
    InferenceError,
    InferenceServerError,
    InvalidInput,
    ModelConfigError,
    ModelNotFound,
)
from deployments.contracts.specs import ModelSpec
from deployments.contracts.stats import triton_model_stats
from deployments.grpc_direct import DirectGrpcServer
from deployments.grpc_model import GrpcModelEndpoints
from deployments.grpc_routes import cluster_identity, direct_enabled, routes_dir
from deployments.model_pipelines import PipelineEndpoints
from deployments.retire import Retirement, v2_gone
from deployments.stats_store import StatsReporter, totals_from
from deployments.v2_codec import (
    HEADER_LENGTH,
    DecodedRequest,
    decode_request,
    decompress,
    encode_response,
)
from deployments.v2_generate import dumps
from deployments.warmup import warm_up

logger = logging.getLogger(__name__)
T = TypeVar("T")


class DecoupledOverInfer(InferenceServerError):
    """``/infer`` on a decoupled model (Triton answers 501, text/plain)."""

    status = 501


def _error(exc: InferenceServerError) -> Response:
    if isinstance(exc, DecoupledOverInfer):
        return Response(dumps({"error": exc.message}), exc.status, media_type="text/plain")
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def _request(
    method: str, path: str, query_string: str, headers: list[tuple[str, str]], body: bytes
) -> Request:
    """A Starlette request over a synthetic ASGI scope whose body is already in memory."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string.encode(),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": None,
        "server": None,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


@serve.deployment(name="TritonModel", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class TritonModelServer(PipelineEndpoints, GrpcModelEndpoints):
    """Loads every served version at start and answers the model's v2 endpoints."""

    def __init__(self, args: TritonModelAppArgs | dict[str, Any]) -> None:
        # published to the object store: use this node's cached copy
        parsed = localized(TritonModelAppArgs.parse(args))
        model_dir = parsed.model_dir
        self.spec = ModelSpec.from_json(parsed.spec)
        if self.spec.ignored_fields:
            logger.warning(
                "model %s: config field(s) %s are not implemented and are ignored "
                "(serving.unsupported_config=warn)",
                self.spec.name,
                ", ".join(self.spec.ignored_fields),
            )
        self.prefix = f"/v2/models/{self.spec.name}"
        self.retirement = Retirement()  # unloaded: answer as the control plane would
        device = "cuda" if ray.get_gpu_ids() else "cpu"
        self.device = device
        self.reporter = StatsReporter()
        self.book = self.reporter.book
        self.backends: dict[int, ModelBackend] = {}
        for version in self.spec.served_versions:
            if isinstance(parsed, EnsembleAppArgs):
                self.backends[version] = EnsembleBackend(self.spec, parsed, device, self.book)
            else:
                self.backends[version] = load_backend(self.spec, Path(model_dir), version, device)
        self.latest = max(self.backends)
        # a python model's auto_complete_config may have completed the config
        self.spec = getattr(self.backends[self.latest], "spec", self.spec)
        warm_up(self.spec, self.backends, self.book)  # before Serve marks the replica ready
        # Triton's ensemble responses carry the sequence parameters (reference §1.3)
        self.response_parameters = (
            {"sequence_id": 0, "sequence_start": False, "sequence_end": False}
            if self.spec.is_ensemble
            else None
        )
        if self.spec.decoupled and self.spec.backend not in ("python", "ensemble"):
            raise ModelConfigError(
                f"model '{self.spec.name}': decoupled transaction policy needs the python backend"
            )
        self.batching = self.spec.dynamic_batching and self.spec.max_batch_size > 0
        if self.batching:
            self._execute_batched.set_max_batch_size(self.spec.max_batch_size)  # type: ignore[attr-defined]
            self._execute_batched.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
                self.spec.max_queue_delay_us / 1e6
            )
        logger.info("model %s versions %s on %s", self.spec.name, list(self.backends), device)
        self.direct = self._start_direct_grpc()

    def _start_direct_grpc(self) -> DirectGrpcServer | None:
        """This replica's own ``ModelInfer`` server (started on the replica's loop), or None."""
        try:
            loop = asyncio.get_running_loop()  # Serve runs __init__ on the user-code loop
        except RuntimeError:
            return None
        if not direct_enabled() or not ray.is_initialized():  # no front outside a cluster
            return None
        server = DirectGrpcServer(self.spec.name, self.grpc_infer, routes_dir(cluster_identity()))
        self._direct_start = loop.create_task(server.start())
        return server

    # -- routing ---------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        """Route ``/v2/models/<name>[/versions/<v>][/ready|/config|/stats|/infer]``."""
        self.reporter.ensure_started()
        path = request.scope["path"]
        if (gone := v2_gone(self.retirement, self.spec.name, path)) is not None:
            return gone
        rest = (
            path[path.find(self.prefix) + len(self.prefix) :].rstrip("/")
            if self.prefix in path
            else ""
        )
        version: int | None = None
        try:
            if rest.startswith("/versions/"):
                head, _, tail = rest[len("/versions/") :].partition("/")
                version = self._version(head)
                rest = "/" + tail if tail else ""
            return await self._dispatch(request, rest, version)
        except InferenceServerError as exc:
            if path.rstrip("/").endswith("/ready"):
                return Response(status_code=400)  # readiness answers 200 or 400, nothing else
            return _error(exc)

    async def handle_raw(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The HTTP entry point for DeploymentHandle callers (the apps gateway).

        Builds the Starlette request the ingress would have built and runs ``__call__`` on it,
        so JSON, binary tensors and content encodings behave exactly as over HTTP.

        Args:
            method: HTTP method.
            path: request path; only ``/v2/models/<this model>[/...]``, the paths the ingress
                routes to this application, are served.
            query_string: the raw query string, without ``?``.
            headers: request headers as (name, value) pairs.
            body: the request body as received (still compressed, if it was).

        Returns:
            ``(status, headers, body)`` of the response.
        """
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            response: Response = _error(ModelNotFound(f"no route {path}"))
        else:
            response = await self(_request(method, path, query_string, headers, body))
        if isinstance(response, StreamingResponse):  # generate_stream: the whole stream
            chunks = [
                c if isinstance(c, bytes) else str(c).encode() async for c in response.body_iterator
            ]
            content = b"".join(chunks)
        else:
            content = bytes(response.body)
        return (
            response.status_code,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            content,
        )

    async def _dispatch(self, request: Request, rest: str, version: int | None) -> Response:
        method = request.method
        if method == "POST" and rest in ("/infer", "/generate", "/generate_stream"):
            chosen = version if version is not None else self.latest
            if rest == "/infer":
                return await self._infer(request, chosen)
            return await self._generate(request, chosen, stream=rest == "/generate_stream")
        if method != "GET":
            return JSONResponse(
                {"error": f"method {method} not allowed on {request.url.path}"}, 405
            )
        if rest == "":
            versions = [version] if version is not None else sorted(self.backends)
            return JSONResponse(self.spec.metadata(versions))
        if rest == "/ready":
            return Response(status_code=200)
        if rest == "/config":
            return JSONResponse(self.spec.config)
        if rest == "/stats":
            return JSONResponse(await self.stats(version))
        raise ModelNotFound(f"no route {request.url.path}")

    def _version(self, text: str) -> int:
        if not text.isdigit() or int(text) not in self.backends:
            raise ModelNotFound(
                f"Request for unknown model: '{self.spec.name}' version {text} is not found"
            )
        return int(text)

    # -- inference -------------------------------------------------------------------------
    async def _infer(self, request: Request, version: int) -> Response:
        if self.spec.decoupled:
            raise DecoupledOverInfer(
                "HTTP end point doesn't support models with decoupled transaction policy"
            )
        start = time.perf_counter_ns()
        headers_in = request.headers
        body = decompress(await request.body(), headers_in.get("content-encoding"))
        header_length = headers_in.get(HEADER_LENGTH)
        try:
            length = int(header_length) if header_length is not None else None
        except ValueError:
            raise InvalidInput(
                f"invalid Inference-Header-Content-Length '{header_length}'"
            ) from None
        payload, headers = await self._counted_infer(
            version,
            start,
            lambda: decode_request(body, length, self.spec),
            lambda decoded, result: encode_response(
                self.spec.name, version, decoded, result, self.response_parameters
            ),
        )
        media = headers.pop("content-type")
        return Response(payload, media_type=media, headers=headers)

    async def _counted_infer(
        self,
        version: int,
        start: int,
        decode: Callable[[], DecodedRequest],
        encode: Callable[[DecodedRequest, Any], T],
    ) -> T:
        """Decode, run and encode one non-decoupled request, counted in the statistics.

        The one place HTTP ``/infer`` and gRPC ``ModelInfer`` are counted, so both protocols
        count alike (a failed decode or execution is a failed request, timed from ``start``).
        """
        try:
            decoded = decode()
        except InferenceServerError:
            self.book.request(
                self.spec.name, version, ok=False, total_ns=time.perf_counter_ns() - start
            )
            raise
        decoded_at = time.perf_counter_ns()
        result, queue_ns, infer_ns = await self._run(version, decoded, decoded_at)
        if isinstance(result, Exception):
            self.book.request(
                self.spec.name, version, ok=False, total_ns=time.perf_counter_ns() - start
            )
            raise (
                result if isinstance(result, InferenceServerError) else InferenceError(str(result))
            )
        out_start = time.perf_counter_ns()
        encoded = encode(decoded, result)
        end = time.perf_counter_ns()
        self.book.request(
            self.spec.name,
            version,
            ok=True,
            total_ns=end - start,
            queue_ns=queue_ns,
            input_ns=decoded_at - start,
            infer_ns=infer_ns,
            output_ns=end - out_start,
            batch=decoded.batch_size,
        )
        return encoded

    async def _run(
        self, version: int, decoded: DecodedRequest, decoded_at: int
    ) -> tuple[Any, int, int]:
        """One request through the batcher or straight to the backend: (result, queue, infer)."""
        if self.batching:
            result: tuple[Any, int, int] = await self._execute_batched(
                (version, decoded, decoded_at)
            )
            return result
        return await self._execute_now(version, decoded)

    async def _backend_execute(self, version: int, requests: list[Any]) -> list[Any]:
        backend = self.backends[version]
        execute_async = getattr(backend, "execute_async", None)
        if execute_async is not None:
            results: list[Any] = await execute_async(requests)
            return results
        return backend.execute(requests)

    async def _execute_now(self, version: int, decoded: DecodedRequest) -> tuple[Any, int, int]:
        begin = time.perf_counter_ns()
        result = (await self._backend_execute(version, [decoded.request]))[0]
        infer_ns = time.perf_counter_ns() - begin
        self.book.execution(
            self.spec.name, version, batch_size=decoded.batch_size, infer_ns=infer_ns
        )
        return result, 0, infer_ns

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
    async def _execute_batched(
        self, items: list[tuple[int, DecodedRequest, int]]
    ) -> list[tuple[Any, int, int]]:
        """Dynamic batching: one backend execution per version present in the batch."""
        begin = time.perf_counter_ns()
        results: list[tuple[Any, int, int]] = [(None, 0, 0)] * len(items)
        by_version: dict[int, list[int]] = {}
        for index, (version, _, _) in enumerate(items):
            by_version.setdefault(version, []).append(index)
        for version, indexes in by_version.items():
            run_start = time.perf_counter_ns()
            outputs = await self._backend_execute(version, [items[i][1].request for i in indexes])
            infer_ns = time.perf_counter_ns() - run_start
            size = sum(items[i][1].batch_size for i in indexes)
            self.book.execution(self.spec.name, version, batch_size=size, infer_ns=infer_ns)
            for i, output in zip(indexes, outputs, strict=True):
                results[i] = (output, begin - items[i][2], infer_ns)
        return results

    # -- statistics ------------------------------------------------------------------------
    async def stats(self, version: int | None = None) -> dict[str, Any]:
        """Triton statistics for this model (all served versions or one)."""
        await self.reporter.flush()
        totals = totals_from(await self.reporter.store.get.remote(self.spec.name))
        versions = [version] if version is not None else sorted(self.backends)
        return {
            "model_stats": [
                triton_model_stats(self.spec.name, v, totals.get((self.spec.name, v)))
                for v in versions
            ]
        }

    def __del__(self) -> None:
        direct = getattr(self, "direct", None)
        if direct is not None:
            direct.close()
        for backend in getattr(self, "backends", {}).values():
            try:
                backend.finalize()
            except Exception:
                logger.warning("finalize failed", exc_info=True)


def build_triton_model(args: TritonModelAppArgs | dict[str, Any]) -> Application:
    """Application builder of one Triton-layout model.

    With an object-store artifact store, ``model_dir_uri``/``model_dir_token``/``store_options``
    travel to the replica, which downloads the model there (never reading this node's disk).

    Args:
        args: :class:`TritonModelAppArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = TritonModelAppArgs.parse(args)
    deployment = TritonModelServer.options(**parsed.options)  # type: ignore[attr-defined]
    app: Application = deployment.bind(parsed)
    return app


def build_triton_ensemble(args: EnsembleAppArgs | dict[str, Any]) -> Application:
    """Application builder of one Triton ensemble (``platform: "ensemble"``).

    The same deployment class as a model (metadata, config, stats, infer, generate); its
    "backend" runs the steps on the step models' own applications, or fused in its replica.

    Args:
        args: :class:`EnsembleAppArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = EnsembleAppArgs.parse(args)
    deployment = TritonModelServer.options(**parsed.options)  # type: ignore[attr-defined]
    app: Application = deployment.bind(parsed)
    return app
