"""The ensemble "backend": runs ``ensemble_scheduling`` steps as a dataflow graph.

Each step starts as soon as every tensor it reads exists, so independent steps run
concurrently. A step runs on the step model's own application by DeploymentHandle (the step is
counted in its own statistics, as on Triton), or, for a fused ensemble, on a backend loaded in
this replica (no hop; the step's executions are recorded in this replica's book under the step
model's name, so they still count in its statistics).

An ensemble with a decoupled step is decoupled (as on Triton 2.51): :meth:`EnsembleBackend.stream`
runs the steps downstream of a decoupled step once per response it sends, and every time the
ensemble's outputs are complete one response goes out. Handles are called on the replica's own
event loop (no thread hop per step).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from deployments.backends.base import ExecuteResult, InferenceRequest
from deployments.backends.bls import BlsRunner, as_bytes
from deployments.backends.coalesce import Coalescer
from deployments.backends.loader import load_backend
from deployments.contracts.app_args import EnsembleAppArgs
from deployments.contracts.ensemble import (
    EnsembleGraph,
    EnsembleStep,
    downstream,
    ensemble_graph,
    is_chain,
)
from deployments.contracts.errors import InferenceError, InferenceServerError, InvalidInput
from deployments.contracts.specs import ModelSpec
from deployments.contracts.stats import StatsBook

_BRANCH_END = object()  # a branch of a decoupled step's response has emitted everything


class StepFailed(Exception):
    """A step answered an error; the ensemble request fails with its message."""

    def __init__(self, error: InferenceServerError) -> None:
        super().__init__(error.message)
        self.error = error


class EnsembleBackend:
    """One served version of an ensemble."""

    def __init__(self, spec: ModelSpec, args: EnsembleAppArgs, device: str, book: StatsBook):
        self.spec = spec
        self.graph: EnsembleGraph = ensemble_graph(spec)
        self.book = book
        self.step_specs = {n: ModelSpec.from_json(a.spec) for n, a in args.steps.items()}
        self.apps = {n: a.app for n, a in args.steps.items()}
        self.caller = BlsRunner()  # its handles are used on this replica's loop only
        # one coalescer per step model: concurrent requests' step calls share a hop
        self.hops: dict[str, Coalescer[Any, tuple[str, Any]]] = {}
        self.in_flight = args.step_batches_in_flight
        self.streaming = {
            s.index: self.step_specs[s.model_name].decoupled for s in self.graph.steps
        }
        self.below = {s.index: downstream(self.graph, s.index) for s in self.graph.steps}
        self.chain = [self.graph.steps[i] for i in self.graph.order] if is_chain(self.graph) else []
        self.fused: dict[tuple[str, int], Any] = {}
        if args.fused:
            for step in self.graph.steps:
                step_spec = self.step_specs[step.model_name]
                version = self._version(step)
                if (step.model_name, version) not in self.fused:
                    self.fused[(step.model_name, version)] = load_backend(
                        step_spec, Path(args.steps[step.model_name].model_dir), version, device
                    )

    def _version(self, step: EnsembleStep) -> int:
        if step.model_version > 0:
            return step.model_version
        return max(self.step_specs[step.model_name].served_versions)

    # -- one step -------------------------------------------------------------------------
    async def _call(self, step: EnsembleStep, inputs: dict[str, np.ndarray], rid: str) -> Any:
        requested = list(step.output_map)
        if self.fused:
            return await self._call_fused(step, inputs, requested, rid)
        hop = self.hops.get(step.model_name)
        if hop is None:
            hop = self.hops[step.model_name] = Coalescer(
                self._sender(step.model_name), in_flight=self.in_flight
            )
        result = await hop.call((step.model_version, inputs, requested, rid, {}))
        return self._outputs(result)

    def _sender(self, model: str) -> Any:
        async def send(calls: list[Any]) -> list[tuple[str, Any]]:
            if len(calls) == 1:  # alone: the plain method (no list to build on either side)
                version, inputs, requested, rid, params = calls[0]
                one = await self.caller.call_here(
                    model, version, inputs, requested, rid, params, None
                )
                return [one]
            return await self.caller.call_many_here(model, calls)

        return send

    def _outputs(self, result: tuple[str, Any]) -> Any:
        kind, value = result
        if kind == "ok":
            return {k: as_bytes(v) for k, v in value.items()}
        if kind == "not_ready":
            raise StepFailed(
                InferenceError(f"in ensemble '{self.spec.name}', model '{value}' is not ready")
            )
        error = InvalidInput if kind == "invalid" else InferenceError
        raise StepFailed(error(str(value)))

    async def _call_stream(
        self, step: EnsembleStep, inputs: dict[str, np.ndarray], rid: str
    ) -> AsyncIterator[Any]:
        """Each response of a decoupled step (its outputs); a failed one raises StepFailed."""
        requested = list(step.output_map)
        if not self.fused:
            async for item in self.caller.stream_here(
                step.model_name, step.model_version, inputs, requested, rid, {}
            ):
                yield self._outputs(item)
            return
        version = self._version(step)
        backend = self.fused[(step.model_name, version)]
        request = InferenceRequest(inputs=inputs, requested_outputs=requested, id=rid)
        spec = self.step_specs[step.model_name]
        batch = next(iter(inputs.values())).shape[0] if inputs and spec.max_batch_size else 1
        start = time.perf_counter_ns()
        ok = True
        try:
            async for result in backend.stream(request):
                if isinstance(result, Exception):
                    ok = False
                    raise StepFailed(
                        result
                        if isinstance(result, InferenceServerError)
                        else InferenceError(str(result))
                    )
                yield {k: as_bytes(v) for k, v in result.items() if k in requested}
        finally:
            elapsed = time.perf_counter_ns() - start
            self.book.execution(step.model_name, version, batch_size=batch, infer_ns=elapsed)
            self.book.request(
                step.model_name, version, ok=ok, total_ns=elapsed, infer_ns=elapsed, batch=batch
            )

    async def _call_fused(
        self, step: EnsembleStep, inputs: dict[str, np.ndarray], requested: list[str], rid: str
    ) -> Any:
        version = self._version(step)
        backend = self.fused[(step.model_name, version)]
        request = InferenceRequest(inputs=inputs, requested_outputs=requested, id=rid)
        start = time.perf_counter_ns()
        execute_async = getattr(backend, "execute_async", None)
        if execute_async is not None:
            [result] = await execute_async([request])
        else:
            [result] = backend.execute([request])
        elapsed = time.perf_counter_ns() - start
        spec = self.step_specs[step.model_name]
        batch = next(iter(inputs.values())).shape[0] if inputs and spec.max_batch_size else 1
        ok = not isinstance(result, Exception)
        self.book.execution(step.model_name, version, batch_size=batch, infer_ns=elapsed)
        self.book.request(
            step.model_name, version, ok=ok, total_ns=elapsed, infer_ns=elapsed, batch=batch
        )
        if not ok:
            raise StepFailed(
                result if isinstance(result, InferenceServerError) else InferenceError(str(result))
            )
        return {k: as_bytes(v) for k, v in result.items()}

    # -- one request ----------------------------------------------------------------------
    async def _one(self, request: InferenceRequest) -> ExecuteResult:
        if self.chain:
            return await self._one_chain(request)
        loop = asyncio.get_running_loop()
        tensors: dict[str, asyncio.Future[np.ndarray]] = {
            t: loop.create_future() for t in self.graph.producer
        }
        for name, array in request.inputs.items():
            future: asyncio.Future[np.ndarray] = loop.create_future()
            future.set_result(array)
            tensors[name] = future

        async def run(step: EnsembleStep) -> None:
            inputs = {key: await tensors[t] for key, t in step.input_map.items()}
            outputs = await self._call(step, inputs, request.id)
            for key, tensor in step.output_map.items():
                if key not in outputs:
                    raise StepFailed(self._missing(step, key))
                tensors[tensor].set_result(outputs[key])

        tasks = [asyncio.ensure_future(run(s)) for s in self.graph.steps]
        try:
            await asyncio.gather(*tasks)
        except StepFailed as exc:
            return exc.error
        finally:
            for task in tasks:
                task.cancel()
        wanted = request.requested_outputs or self.spec.output_names
        return {name: tensors[name].result() for name in wanted}

    async def _one_chain(self, request: InferenceRequest) -> ExecuteResult:
        """A chain of steps in its only order: no task or future per step."""
        env: dict[str, Any] = dict(request.inputs)
        try:
            for step in self.chain:
                inputs = {key: env[t] for key, t in step.input_map.items()}
                outputs = await self._call(step, inputs, request.id)
                for key, tensor in step.output_map.items():
                    if key not in outputs:
                        raise StepFailed(self._missing(step, key))
                    env[tensor] = outputs[key]
        except StepFailed as exc:
            return exc.error
        wanted = request.requested_outputs or self.spec.output_names
        return {name: env[name] for name in wanted}

    def _missing(self, step: EnsembleStep, key: str) -> InferenceError:
        return InferenceError(
            f"in ensemble '{self.spec.name}', model '{step.model_name}' did not produce output "
            f"'{key}'"
        )

    # -- a decoupled ensemble ---------------------------------------------------------------
    async def stream(self, request: InferenceRequest) -> AsyncIterator[ExecuteResult]:
        """Every response of one request to a decoupled ensemble, as the steps produce them.

        A failed step ends the stream with an error item whose message Triton prefixes with
        ``in ensemble '<name>', ``.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        env: dict[str, asyncio.Future[Any]] = {}
        for name, array in request.inputs.items():
            env[name] = loop.create_future()
            env[name].set_result(array)
        wanted = request.requested_outputs or self.spec.output_names
        done = object()

        async def top() -> None:
            try:
                await self._context(env, list(self.graph.steps), request.id, wanted, queue)
            finally:
                queue.put_nowait(done)

        task = asyncio.ensure_future(top())
        try:
            while True:
                item = await queue.get()
                if item is done:
                    return
                if isinstance(item, StepFailed):
                    error = item.error
                    yield type(error)(f"in ensemble '{self.spec.name}', {error.message}")
                    return
                yield item
        finally:
            task.cancel()

    async def _context(
        self,
        env: dict[str, asyncio.Future[Any]],
        steps: list[EnsembleStep],
        rid: str,
        wanted: list[str],
        queue: asyncio.Queue[Any],
    ) -> None:
        """Run ``steps`` over ``env``; a decoupled step runs what it feeds once per response."""
        loop = asyncio.get_running_loop()
        indexes = {s.index for s in steps}
        owned: set[int] = set()
        roots: list[EnsembleStep] = []
        for step in sorted(steps, key=lambda s: self.graph.order.index(s.index)):
            if step.index in owned:
                continue
            roots.append(step)
            if self.streaming[step.index]:
                owned |= self.below[step.index] & indexes
        local = dict(env)
        for step in roots:
            if not self.streaming[step.index]:
                for tensor in step.output_map.values():
                    local[tensor] = loop.create_future()
        deferred = owned | {s.index for s in roots if self.streaming[s.index]}
        emits = not any(self.graph.producer[t] in deferred for t in wanted)
        children: list[asyncio.Future[None]] = []

        async def run(step: EnsembleStep) -> None:
            inputs = {key: await local[t] for key, t in step.input_map.items()}
            if not self.streaming[step.index]:
                self._publish(step, await self._call(step, inputs, rid), local)
                return
            below = [s for s in steps if s.index in self.below[step.index]]
            # branches run concurrently; what they emit goes out in the order of the responses
            branches: asyncio.Queue[asyncio.Queue[Any] | None] = asyncio.Queue()
            children.append(asyncio.ensure_future(forward(branches)))
            try:
                async for outputs in self._call_stream(step, inputs, rid):
                    child = dict(local)
                    for tensor in step.output_map.values():
                        child[tensor] = loop.create_future()
                    self._publish(step, outputs, child)
                    own: asyncio.Queue[Any] = asyncio.Queue()
                    branches.put_nowait(own)
                    children.append(asyncio.ensure_future(branch(child, below, own)))
            except StepFailed as exc:  # after what the earlier responses produce, as on Triton
                failed: asyncio.Queue[Any] = asyncio.Queue()
                failed.put_nowait(exc)
                failed.put_nowait(_BRANCH_END)
                branches.put_nowait(failed)
            finally:
                branches.put_nowait(None)

        async def forward(branches: asyncio.Queue[asyncio.Queue[Any] | None]) -> None:
            while (own := await branches.get()) is not None:
                while (item := await own.get()) is not _BRANCH_END:
                    queue.put_nowait(item)

        async def branch(
            child: dict[str, asyncio.Future[Any]],
            below: list[EnsembleStep],
            own: asyncio.Queue[Any],
        ) -> None:
            try:
                await self._context(child, below, rid, wanted, own)
            except StepFailed as exc:
                own.put_nowait(exc)
            finally:
                own.put_nowait(_BRANCH_END)

        async def emit() -> None:
            queue.put_nowait({name: await local[name] for name in wanted})

        tasks = [asyncio.ensure_future(run(s)) for s in roots]
        if emits:
            tasks.append(asyncio.ensure_future(emit()))
        try:
            try:
                await asyncio.gather(*tasks)
            except StepFailed as exc:
                queue.put_nowait(exc)
                return
            await asyncio.gather(*children)
        finally:
            for task in (*tasks, *children):
                task.cancel()

    def _publish(
        self, step: EnsembleStep, outputs: Any, env: dict[str, asyncio.Future[Any]]
    ) -> None:
        for key, tensor in step.output_map.items():
            if key not in outputs:
                raise StepFailed(self._missing(step, key))
            env[tensor].set_result(outputs[key])

    async def execute_async(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Every request through the graph, concurrently."""
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def execute(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Synchronous form (no event loop may be running)."""
        return asyncio.run(self.execute_async(requests))

    def finalize(self) -> None:
        """Finalize fused step backends."""
        for backend in self.fused.values():
            backend.finalize()
