"""Serve application for one TorchServe workflow: a DAG driver composed with model deployments.

The driver (route ``/wfpredict/<name>``) runs the DAG with ``contracts.graph.run_dag``: function
nodes of the handler file run in the driver; model nodes are either

* ``inline`` (fused execution): the ``.mar`` handler is loaded in the driver replica itself, no
  DeploymentHandle hop;
* ``deployment``: a bound ``TSModel`` deployment named ``<wf>__<node>`` with its own autoscaling
  (min/max workers) and ``serve.batch`` queue, passed to the driver as a DeploymentHandle;
* ``shared``: an already registered model's application, reached by its DeploymentHandle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from deployments.backends.torchserve_handler import TorchServeHandler, request_row
from deployments.contracts.app_args import (
    TorchServeModelAppArgs,
    TorchServeVersionArgs,
    WorkflowAppArgs,
    WorkflowNodeConfig,
)
from deployments.contracts.archives import ensure_extracted
from deployments.contracts.artifacts import localized
from deployments.contracts.errors import TorchServeReplicaError, WorkflowOutputError
from deployments.contracts.graph import (
    NodeExecutionError,
    assemble_response,
    call_with_retry,
    run_dag,
    validate_dag,
)
from deployments.retire import Retirement, ts_workflow_gone
from deployments.stats_store import StatsReporter
from deployments.ts_auth import invalid_key_response, key_check
from deployments.ts_metrics import HandlerMetricsReporter
from deployments.ts_model import (
    DEPLOYMENT_NAME,
    Predictor,
    StreamAborted,
    TSModelServer,
    deployment_options,
    load_version,
    make_predictor,
    replica_error_response,
)
from deployments.ts_streaming import PartQueue

logger = logging.getLogger(__name__)


class WorkflowDriver:
    """Runs one workflow's DAG per request; branches whose parents are done run concurrently."""

    def __init__(
        self, args: WorkflowAppArgs | dict[str, Any], handles: dict[str, DeploymentHandle[Any]]
    ) -> None:
        parsed = localized(WorkflowAppArgs.parse(args))  # node-local copies from an object store
        self.name = parsed.name
        self.keys = key_check(parsed.key_store)
        max_bytes = parsed.max_extract_bytes
        war_dir = ensure_extracted(Path(parsed.archive), Path(parsed.war_dir), max_bytes)
        self.dag = validate_dag({k: list(v) for k, v in parsed.dag.items()})
        self.configs = {
            node: parsed.node_configs.get(node, WorkflowNodeConfig()) for node in self.dag.nodes
        }
        self.handles = dict(handles)
        for node, app in parsed.shared.items():
            self.handles[node] = serve.get_deployment_handle(DEPLOYMENT_NAME, app_name=app)
        self.local: dict[str, Predictor] = {}
        self.handlers: dict[str, TorchServeHandler] = {}
        # Intermediate responses of the single leaf, by id(row) (in-process nodes only).
        self.streams: dict[int, Callable[[bytes], None]] = {}
        leaves = self.dag.leaves
        self.leaf = leaves[0] if len(leaves) == 1 else None
        self.metrics = HandlerMetricsReporter(parsed.handler_metrics)
        for node in parsed.function_nodes:
            handler = TorchServeHandler(
                f"{self.name}__{node}",
                war_dir,
                f"{parsed.handler}:{node}",
                batch_size=1,
                metrics=self.metrics.cache(f"{self.name}__{node}"),
            )
            self.handlers[node] = handler
            self.local[node] = make_predictor(handler, 1, 0, streams=self.streams)
        for node, spec in parsed.inline.items():
            handler = load_version(
                f"{self.name}__{node}", spec, max_bytes, self.metrics.cache(f"{self.name}__{node}")
            )
            if spec.batch_size <= 1:
                self.handlers[node] = handler
            self.local[node] = make_predictor(
                handler, spec.batch_size, spec.max_batch_delay, streams=self.streams
            )
        self.chain = self._chain_plan()
        self.reporter = StatsReporter()
        self.retirement = Retirement()  # unregistered: answer as the control plane would

    def _record_node(self, node: str, started_ns: int, *, ok: bool) -> None:
        """Per-node latency and outcome (``platform_workflow_node_*`` metrics)."""
        self.reporter.book.request(
            f"wf:{self.name}:{node}", 0, ok=ok, total_ns=time.perf_counter_ns() - started_ns
        )

    def _chain_plan(self) -> list[str] | None:
        """Nodes in order when the whole DAG is a chain of unbatched in-process nodes.

        Such a workflow runs in ONE worker-thread hop per request instead of one per node (each
        hop costs ~0.25 ms of event-loop round trip on a small machine).
        """
        dag = self.dag
        if any(node not in self.handlers for node in dag.nodes):
            return None
        if any(len(dag.children[n]) > 1 or len(dag.parents[n]) > 1 for n in dag.nodes):
            return None
        return list(dag.order)

    def _run_chain(
        self,
        row: dict[str, Any],
        headers: dict[str, str],
        current: list[str],
        abandoned: threading.Event,
        on_part: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """Run the chain synchronously (in a worker thread), with TorchServe's retry rules.

        An attempt that raises, or that finishes later than ``timeout-ms`` (TorchServe would have
        abandoned it), is retried ``retry-attempts`` times, then the node fails. Once the caller
        has given up on the request (``abandoned``), no further node or retry starts.
        """
        data = row
        output = b""
        streamed: list[bool] = []

        def leaf_sink(_idx: int, body: bytes) -> None:
            streamed.append(True)
            if on_part is not None:
                on_part(body)

        for node in self.chain or []:
            current[0] = node
            config = self.configs[node]
            attempts = config.retry_attempts + 1
            node_started = time.perf_counter_ns()
            for attempt in range(attempts):
                if abandoned.is_set():
                    raise NodeExecutionError(node)
                started = time.monotonic()
                sink = leaf_sink if on_part is not None and node == self.leaf else None
                if streamed:  # parts already left: the response cannot be retried
                    raise NodeExecutionError(node)
                try:
                    output = self.handlers[node].predict([data], [headers], sink)[0].body
                except Exception as exc:
                    logger.warning("node %s attempt %d failed: %r", node, attempt + 1, exc)
                else:
                    if time.monotonic() - started <= config.timeout_s:
                        break
                    logger.warning("node %s attempt %d exceeded timeout-ms", node, attempt + 1)
                if attempt == attempts - 1:
                    self._record_node(node, node_started, ok=False)
                    raise NodeExecutionError(node)
            self._record_node(node, node_started, ok=True)
            data = {"body": bytearray(output)}
        return output

    async def _call_node(
        self,
        node: str,
        row: dict[str, Any],
        headers: dict[str, str],
        on_part: Callable[[bytes], None] | None = None,
    ) -> bytes:
        config = self.configs[node]

        streamed: list[bool] = []

        def sink(body: bytes) -> None:
            streamed.append(True)
            if on_part is not None:
                on_part(body)

        async def attempt() -> bytes:
            if streamed:  # parts already left: the response cannot be retried
                raise NodeExecutionError(node)
            if node in self.local:
                if on_part is not None and node == self.leaf:
                    self.streams[id(row)] = sink
                try:
                    output = await self.local[node](row, headers)
                finally:
                    self.streams.pop(id(row), None)
                return output.body
            result: bytes = await self.handles[node].predict_row.remote(row, headers)
            return result

        started = time.perf_counter_ns()
        try:
            result = await call_with_retry(node, attempt, config.retry_attempts, config.timeout_ms)
        except NodeExecutionError:
            self._record_node(node, started, ok=False)
            raise
        self._record_node(node, started, ok=True)
        return result

    async def run(
        self,
        row: dict[str, Any],
        headers: dict[str, str],
        on_part: Callable[[bytes], None] | None = None,
    ) -> bytes:
        """Run the DAG on one request row; returns the wfpredict body.

        ``on_part`` receives the intermediate responses of the single leaf node when it runs
        in-process (function node or fused model node).
        """
        if self.chain is not None:
            current = [self.chain[0]]
            budget_s = sum(c.timeout_s * (c.retry_attempts + 1) for c in self.configs.values())
            abandoned = threading.Event()
            try:
                return await asyncio.wait_for(
                    asyncio.to_thread(self._run_chain, row, headers, current, abandoned, on_part),
                    budget_s,
                )
            except (TimeoutError, asyncio.CancelledError) as exc:
                abandoned.set()  # the worker thread stops before its next node or retry
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise NodeExecutionError(current[0]) from exc

        async def call(node: str, node_row: dict[str, Any]) -> bytes:
            return await self._call_node(node, node_row, headers, on_part)

        outputs = await run_dag(self.dag, row, call)
        return assemble_response(self.dag, outputs)

    async def __call__(self, request: Request) -> Response:
        """``/wfpredict/<name>``: any method, as in TorchServe."""
        if self.keys is not None and not await self.keys.allowed(
            request.headers.get("authorization")
        ):
            return invalid_key_response()
        if (gone := ts_workflow_gone(self.retirement, self.name)) is not None:
            return replica_error_response(gone)
        self.reporter.ensure_started()
        self.metrics.ensure_started()
        row, headers = await request_row(request)
        pending = PartQueue()
        task = asyncio.ensure_future(self.run(row, headers, pending.put))
        first = await pending.first_part(task)
        if first is not None:
            return StreamingResponse(
                self._stream(task, first, pending), headers={"ts_stream_next": "true"}
            )
        try:
            body = task.result()
        except TorchServeReplicaError as exc:  # a node failed after its retries
            return replica_error_response(exc)
        except (ValueError, json.JSONDecodeError) as exc:
            return replica_error_response(WorkflowOutputError(f"Invalid workflow output: {exc}"))
        except asyncio.CancelledError:
            raise
        return Response(body, status_code=200, media_type="application/json")

    async def _stream(
        self, task: asyncio.Future[bytes], first: asyncio.Future[bytes], pending: PartQueue
    ) -> AsyncIterator[bytes]:
        """The last node's parts, then the workflow's body; a failure drops the connection."""
        try:
            async for part in pending.parts(first, task):
                yield part
            try:
                body = task.result()
            except (TorchServeReplicaError, ValueError) as exc:
                logger.warning("workflow %s: stream failed: %r", self.name, exc)
                raise StreamAborted(str(exc)) from exc
            yield body
        finally:
            if not task.done():
                task.cancel()


def build_workflow(args: WorkflowAppArgs | dict[str, Any]) -> Application:
    """Typed builder for a workflow app: the DAG driver bound to its model-node deployments.

    Args:
        args: :class:`WorkflowAppArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = WorkflowAppArgs.parse(args)
    max_ongoing = parsed.max_ongoing_requests
    handles: dict[str, Any] = {}
    for node, spec in parsed.deployments.items():
        version = TorchServeVersionArgs.model_validate(
            spec.model_dump(exclude={"min_workers", "max_workers", "num_gpus"})
        )
        model_args = TorchServeModelAppArgs(
            name=f"{parsed.name}__{node}",
            default_version="1.0",
            versions={"1.0": version},
            min_workers=spec.min_workers,
            max_workers=spec.max_workers,
            max_ongoing_requests=max_ongoing,
            max_extract_bytes=parsed.max_extract_bytes,
            num_gpus=spec.num_gpus,
            handler_metrics=parsed.handler_metrics,
        )
        options = deployment_options(
            spec.min_workers, spec.max_workers, max_ongoing, num_gpus=spec.num_gpus
        )
        node_deployment = serve.deployment(name=model_args.name, **options)(TSModelServer)
        handles[node] = node_deployment.bind(model_args)
    driver_options = deployment_options(
        parsed.driver_min_workers,
        parsed.driver_max_workers,
        max_ongoing,
        num_gpus=parsed.driver_num_gpus,
    )
    driver = serve.deployment(name="WorkflowDriver", **driver_options)(WorkflowDriver)
    app: Application = driver.bind(parsed, handles)
    return app
