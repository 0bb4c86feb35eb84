"""Serve application for one registered TorchServe ``.mar`` model (every registered version).

Route prefix ``/predictions/<name>``: the Serve proxy routes
``POST /predictions/<name>[/<version>]`` straight to this replica. Handlers run through
TorchServe's ``ts`` library
(``deployments.backends.torchserve_handler``); ``batch_size``/``max_batch_delay`` become a
``serve.batch`` queue per version, min/max workers become the deployment's autoscaling bounds.
Workflows reuse a registered model through ``predict_row`` (DeploymentHandle composition).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from deployments.backends.torchserve_handler import (
    HandlerOutput,
    TorchServeHandler,
    add_dependency_path,
    load_manifest,
    request_row,
)
from deployments.contracts.app_args import TorchServeModelAppArgs, TorchServeVersionArgs
from deployments.contracts.archives import ensure_extracted
from deployments.contracts.artifacts import localized
from deployments.contracts.errors import (
    HandlerError,
    HandlerOutOfMemory,
    HandlerPredictionError,
    ModelVersionNotServed,
    PredictionTimeout,
    TorchServeReplicaError,
)
from deployments.retire import Retirement, ts_model_gone
from deployments.stats_store import StatsReporter
from deployments.ts_auth import invalid_key_response, key_check
from deployments.ts_metrics import HandlerMetricsReporter
from deployments.ts_streaming import PartQueue

logger = logging.getLogger(__name__)

DEPLOYMENT_NAME = "TSModel"


class StreamAborted(Exception):
    """A handler failed after its stream began: the HTTP response ends without its last chunk."""


Predictor = Callable[[dict[str, Any], dict[str, str]], Awaitable[HandlerOutput]]


# The replica's HTTP layer: the one table from TorchServe replica errors to statuses (resolved
# along the MRO). TorchServe's Python backend answers 503 for a failed handler, 507 when it ran
# out of memory, a PredictionException's own code, and 500 "Worker died." past responseTimeout.
REPLICA_STATUS_BY_ERROR: dict[type[TorchServeReplicaError], int] = {
    TorchServeReplicaError: 500,
    ModelVersionNotServed: 404,
    PredictionTimeout: 500,
    HandlerError: 503,
    HandlerOutOfMemory: 507,
}


def replica_status(exc: TorchServeReplicaError) -> int:
    """The HTTP status of a replica error (a PredictionException keeps the handler's code)."""
    if isinstance(exc, HandlerPredictionError):
        return exc.error_code
    for klass in type(exc).__mro__:
        if klass in REPLICA_STATUS_BY_ERROR:
            return REPLICA_STATUS_BY_ERROR[klass]
    return 500


def replica_error_response(exc: TorchServeReplicaError) -> Response:
    """TorchServe's error body ``{code, type, message}`` (pretty-printed) for a replica error."""
    status = replica_status(exc)
    body = {"code": status, "type": exc.ts_type, "message": exc.message}
    return Response(
        json.dumps(body, indent=2) + "\n", status_code=status, media_type="application/json"
    )


def assigned_gpu() -> int | None:
    """The GPU index Ray gave this replica (the context's ``system_properties["gpu_id"]``)."""
    import ray

    ids = ray.get_gpu_ids() if ray.is_initialized() else []
    return int(ids[0]) if ids else None


def load_version(
    name: str, spec: TorchServeVersionArgs, max_bytes: int, metrics: Any | None = None
) -> TorchServeHandler:
    """Load one model version from its (extracted) archive (node-local copies if published).

    ``metrics`` is the handler's ``context.metrics`` (a recording cache whose values reach
    ``/metrics``); None gives TorchServe's log-only cache.
    """
    spec = localized(spec)
    model_dir = ensure_extracted(Path(spec.archive), Path(spec.model_dir), max_bytes)
    add_dependency_path(model_dir)
    manifest = load_manifest(model_dir)
    yaml_config: dict[str, Any] = {}
    config_file = ((manifest or {}).get("model") or {}).get("configFile")
    if config_file and (model_dir / config_file).is_file():
        import yaml

        yaml_config = yaml.safe_load((model_dir / config_file).read_text()) or {}
    return TorchServeHandler(
        name,
        model_dir,
        spec.handler,
        manifest=manifest,
        batch_size=spec.batch_size,
        gpu_id=assigned_gpu(),
        model_yaml_config=yaml_config,
        metrics=metrics,
    )


def make_predictor(
    handler: TorchServeHandler,
    batch_size: int,
    max_batch_delay_ms: int,
    handler_ns: dict[int, int] | None = None,
    streams: dict[int, Callable[[bytes], None]] | None = None,
) -> Predictor:
    """An async per-item predictor; with ``batch_size > 1`` items are batched by ``serve.batch``.

    When ``handler_ns`` is given, the handler time of each row is stored under ``id(row)`` so
    the caller can split its latency into queue and compute (``ts_queue_latency_microseconds``).
    Intermediate responses of a row go to ``streams[id(row)]`` when the caller registered one
    (called from the handler's thread).
    """
    timings = handler_ns if handler_ns is not None else {}
    sinks = streams if streams is not None else {}

    def timed_predict(
        rows: list[dict[str, Any]], headers: list[dict[str, str]]
    ) -> list[HandlerOutput]:
        def on_part(idx: int, body: bytes) -> None:
            sink = sinks.get(id(rows[idx]))
            if sink is not None:
                sink(body)

        start = time.perf_counter_ns()
        try:
            return handler.predict(rows, headers, on_part)
        finally:
            if handler_ns is not None:
                elapsed = time.perf_counter_ns() - start
                for row in rows:
                    timings[id(row)] = elapsed

    if batch_size <= 1:

        async def single(row: dict[str, Any], headers: dict[str, str]) -> HandlerOutput:
            outputs = await asyncio.to_thread(timed_predict, [row], [headers])
            return outputs[0]

        return single

    @serve.batch(max_batch_size=batch_size, batch_wait_timeout_s=max_batch_delay_ms / 1000.0)
    async def batched(
        rows: list[dict[str, Any]], headers: list[dict[str, str]]
    ) -> list[HandlerOutput]:
        return await asyncio.to_thread(timed_predict, rows, headers)

    return cast(Predictor, batched)


class TSModelServer:
    """All versions of one TorchServe model, each with its own handler and batch queue."""

    def __init__(self, args: TorchServeModelAppArgs | dict[str, Any]) -> None:
        parsed = TorchServeModelAppArgs.parse(args)
        self.name = parsed.name
        self.default_version = parsed.default_version
        self.predictors: dict[str, Predictor] = {}
        self.timeouts: dict[str, float] = {}
        self.handler_ns: dict[int, int] = {}
        self.streams: dict[int, Callable[[bytes], None]] = {}
        self.reporter = StatsReporter()
        self.metrics = HandlerMetricsReporter(parsed.handler_metrics)
        self.keys = key_check(parsed.key_store)
        self.retirement = Retirement()  # unregistered: answer as the control plane would
        for version, spec in parsed.versions.items():
            handler = load_version(
                self.name, spec, parsed.max_extract_bytes, self.metrics.cache(self.name)
            )
            self.predictors[version] = make_predictor(
                handler, spec.batch_size, spec.max_batch_delay, self.handler_ns, self.streams
            )
            self.timeouts[version] = spec.response_timeout

    async def predict_row(
        self, row: dict[str, Any], headers: dict[str, str] | None = None, version: str | None = None
    ) -> bytes:
        """One item through the model (workflow nodes call this).

        Raises:
            HandlerError: the handler failed.
        """
        version = version or self.default_version
        self.metrics.ensure_started()
        output = await self.predictors[version](row, headers or {})
        return output.body

    async def __call__(self, request: Request) -> Response:
        """``/predictions/<name>[/<version>]``."""
        if self.keys is not None and not await self.keys.allowed(
            request.headers.get("authorization")
        ):
            return invalid_key_response()
        parts = [p for p in request.url.path.split("/") if p]
        version = self.default_version
        if len(parts) >= 3 and parts[0] == "predictions":
            version = parts[2]
        if (gone := ts_model_gone(self.retirement, self.name, version)) is not None:
            return replica_error_response(gone)
        if version not in self.predictors:
            return replica_error_response(
                ModelVersionNotServed(
                    f"Model version: {version} does not exist for model: {self.name}"
                )
            )
        self.reporter.ensure_started()
        self.metrics.ensure_started()
        started = time.perf_counter_ns()
        row, headers = await request_row(request)
        pending = PartQueue()
        self.streams[id(row)] = pending.put
        # responseTimeout: a timer cancels the prediction task (one task per request; no
        # asyncio.wait_for, which costs a second task and a waiter on Python 3.11).
        task = asyncio.ensure_future(self.predictors[version](row, headers))
        timer = asyncio.get_running_loop().call_later(self.timeouts[version], task.cancel)
        first = await pending.first_part(task)
        if first is not None:
            return self._stream(version, row, started, task, first, pending, timer)
        timer.cancel()
        self.streams.pop(id(row), None)
        if task.cancelled():
            self._record(version, row, started, ok=False)
            return replica_error_response(PredictionTimeout("Worker died."))
        try:
            output = task.result()
        except HandlerError as exc:
            self._record(version, row, started, ok=False)
            return replica_error_response(exc)
        self._record(version, row, started, ok=output.status < 400)
        response = Response(output.body, status_code=output.status, headers=output.headers)
        if output.content_type:
            response.headers["content-type"] = output.content_type
        return response

    def _stream(
        self,
        version: str,
        row: dict[str, Any],
        started: int,
        task: asyncio.Future[HandlerOutput],
        first: asyncio.Future[bytes],
        pending: PartQueue,
        timer: asyncio.TimerHandle,
    ) -> StreamingResponse:
        """TorchServe streaming: one HTTP chunk per intermediate response, the final value last.

        A handler failing mid-stream ends the stream without its last chunk (the connection is
        dropped), as TorchServe 0.12 does once the headers have left.
        """

        async def chunks() -> AsyncIterator[bytes]:
            ok = False
            try:
                async for part in pending.parts(first, task):
                    yield part
                if task.cancelled():  # past responseTimeout
                    logger.warning("model %s: stream timed out", self.name)
                    raise StreamAborted("Worker died.")
                try:
                    output = task.result()
                except HandlerError as exc:
                    logger.warning("model %s: stream failed: %r", self.name, exc)
                    raise StreamAborted(str(exc)) from exc
                ok = output.status < 400
                yield output.body
            finally:
                timer.cancel()
                self.streams.pop(id(row), None)
                if not task.done():
                    task.cancel()
                self._record(version, row, started, ok=ok)

        return StreamingResponse(chunks(), status_code=200, headers={"ts_stream_next": "true"})

    def _record(self, version: str, row: dict[str, Any], started_ns: int, *, ok: bool) -> None:
        """TorchServe metrics: total latency, and queue time = total minus handler time."""
        total = time.perf_counter_ns() - started_ns
        compute = self.handler_ns.pop(id(row), 0)
        self.reporter.book.request(
            f"ts:{self.name}",
            version,
            ok=ok,
            total_ns=total,
            queue_ns=max(total - compute, 0),
            infer_ns=compute,
        )


def deployment_options(
    min_workers: int,
    max_workers: int,
    max_ongoing: int,
    max_queued: int | None = None,
    num_gpus: float = 0.0,
) -> dict[str, Any]:
    """Serve options for TorchServe's worker bounds (fixed count when min == max)."""
    actor: dict[str, Any] = {"num_cpus": 0}
    if num_gpus > 0:
        actor["num_gpus"] = num_gpus
    options: dict[str, Any] = {"max_ongoing_requests": max_ongoing, "ray_actor_options": actor}
    if max_queued is not None:
        options["max_queued_requests"] = max_queued
    max_workers = max(max_workers, min_workers, 1)
    if min_workers == max_workers:
        options["num_replicas"] = max_workers
    else:
        options["autoscaling_config"] = {
            "min_replicas": max(min_workers, 0),
            "max_replicas": max_workers,
            "target_ongoing_requests": 2,
        }
    return options


def build_ts_model(args: TorchServeModelAppArgs | dict[str, Any]) -> Application:
    """Typed builder for a TorchServe model app.

    Args:
        args: :class:`TorchServeModelAppArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = TorchServeModelAppArgs.parse(args)
    options = deployment_options(
        parsed.min_workers,
        parsed.max_workers,
        parsed.max_ongoing_requests,
        parsed.max_queued_requests,
        parsed.num_gpus,
    )
    deployment = serve.deployment(name=DEPLOYMENT_NAME, **options)(TSModelServer)
    app: Application = deployment.bind(parsed)
    return app
