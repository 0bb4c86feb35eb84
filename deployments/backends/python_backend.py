"""Triton python backend: loads ``<version>/model.py`` and calls ``TritonPythonModel``.

As on Triton, one model instance runs one ``execute`` at a time: a synchronous ``execute``
runs on this instance's own thread (so a model that sleeps, streams or makes a BLS ``exec()``
never blocks the replica's event loop), an ``async def execute`` on the replica's loop.

A thread hand-off costs two context switches per request, more than a tiny model's whole
``execute`` (docs/benchmarks.md, "Inference across model sizes"). So a model whose executions
on its thread average (moving average, after :data:`INLINE_AFTER` of them) under
:data:`INLINE_MAX_S` runs inline on the loop; an inline execution over :data:`INLINE_BAN_S`
(a sleep, a BLS ``exec()``, a large input) sends it back to its thread, for good after
:data:`INLINE_STRIKES` such returns. ``parameters.ray_inline_execute: "false"`` keeps a model
on its thread always. Decoupled models always stream from their thread.
Decoupled models answer through ``request.get_response_sender()``; :meth:`stream` yields each
response as it is sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import inspect
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deployments.backends import triton_python_backend_utils as pb_utils
from deployments.backends.base import ExecuteResult, InferenceRequest
from deployments.backends.bls import BlsRunner
from deployments.contracts.errors import InferenceError, InvalidInput, ModelConfigError
from deployments.contracts.specs import ModelSpec, completed_spec

# Model code imports this name; register our implementation once per process.
sys.modules.setdefault("triton_python_backend_utils", pb_utils)

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
INLINE_AFTER = 32  # executions on the thread before the average decides
INLINE_MAX_S = 0.0005  # inline when executions average under 0.5 ms
INLINE_BAN_S = 0.01  # an inline execution this slow sends the model back to its thread
INLINE_STRIKES = 3  # ... and for good after this many returns


def _raised(exc: BaseException) -> InferenceError:
    return InferenceError(f"{type(exc).__name__}: {exc}")


def response_result(response: pb_utils.InferenceResponse) -> ExecuteResult:
    """A model's InferenceResponse as outputs, or the error it carries (INVALID_ARG is a 400)."""
    if response.has_error():
        error = response.error()
        message = error.message() if error is not None else "error"
        if error is not None and error.code() == pb_utils.TritonError.INVALID_ARG:
            return InvalidInput(message)
        return InferenceError(message)
    return {t.name(): t.as_numpy() for t in response.output_tensors()}


class PythonBackend:
    """One instance of a python-backend model (``initialize`` on load, ``finalize`` on unload)."""

    def __init__(self, spec: ModelSpec, model_dir: Path, version: int, device: str) -> None:
        self.spec = spec
        self.version = version
        if pb_utils.RUNTIME.bls is None:
            pb_utils.RUNTIME.bls = BlsRunner()
        path = model_dir / str(version) / spec.model_filename
        module_name = f"_triton_model_{spec.name}_{version}_{uuid.uuid4().hex[:8]}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ModelConfigError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.path.insert(0, str(path.parent))
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelConfigError(
                f"failed to load '{spec.name}': {type(exc).__name__}: {exc}"
            ) from None
        finally:
            sys.path.remove(str(path.parent))
        model_class = getattr(module, "TritonPythonModel", None)
        if model_class is None:
            raise ModelConfigError(f"{path} defines no TritonPythonModel class")
        complete = getattr(model_class, "auto_complete_config", None)
        if complete is not None:  # Triton calls it before initialize (auto-complete is on)
            try:
                completed = complete(pb_utils.ModelConfig(spec.config))
                self.spec = spec = completed_spec(spec, completed.as_dict())
            except ModelConfigError:
                raise
            except Exception as exc:
                raise ModelConfigError(
                    f"failed to load '{spec.name}': auto_complete_config: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        self.model = model_class()
        self.async_execute = inspect.iscoroutinefunction(getattr(self.model, "execute", None))
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{spec.name}-exec")
        self._runs = 0  # executions on the thread since the last (re)start of the average
        self._average_s = 0.0
        self._on_thread = 0  # executions handed to the thread and not finished
        self.inline = False
        self._strikes = (
            INLINE_STRIKES
            if spec.parameters.get("ray_inline_execute", "").lower() == "false"
            else 0
        )
        gpu = device.startswith("cuda")
        args = {
            "model_config": json.dumps(spec.config),
            "model_instance_kind": "GPU" if gpu else "CPU",
            "model_instance_name": f"{spec.name}_0_0",
            "model_instance_device_id": "0",
            "model_repository": str(model_dir),
            "model_version": str(version),
            "model_name": spec.name,
        }
        if hasattr(self.model, "initialize"):
            init = self.model.initialize(args)
            if inspect.iscoroutine(init):
                asyncio.run(init)

    # -- requests and responses -----------------------------------------------------------
    def _pb_request(
        self, request: InferenceRequest, deliver: Callable[[Any, int], None]
    ) -> pb_utils.InferenceRequest:
        return pb_utils.InferenceRequest(
            inputs=[pb_utils.Tensor(name, array) for name, array in request.inputs.items()],
            requested_output_names=request.requested_outputs or self.spec.output_names,
            request_id=request.id,
            parameters=request.parameters,
            model_name=self.spec.name,
            model_version=self.version,
            response_sender=pb_utils.InferenceResponseSender(deliver),
        )

    def _results(self, responses: Any, sent: list[list[Any]], count: int) -> list[ExecuteResult]:
        if responses is None and all(sent):
            # default-mode response sender: one response per request sent instead of returned
            responses = [s[0] for s in sent]
        if responses is None or len(responses) != count:
            error = InferenceError(
                f"model '{self.spec.name}' returned {0 if responses is None else len(responses)} "
                f"responses for {count} requests"
            )
            return [error for _ in range(count)]
        return [response_result(r) for r in responses]

    async def _call_execute(
        self, pb_requests: list[pb_utils.InferenceRequest], *, may_inline: bool = True
    ) -> Any:
        if self.async_execute:
            return await self.model.execute(pb_requests)
        if self.inline and may_inline:
            start = time.perf_counter()
            try:
                return self.model.execute(pb_requests)
            finally:
                if time.perf_counter() - start > INLINE_BAN_S:
                    self.inline, self._runs = False, 0
                    self._strikes += 1
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        self._on_thread += 1
        try:
            result, elapsed = await loop.run_in_executor(
                self._thread, context.run, self._timed_execute, pb_requests
            )
        finally:
            self._on_thread -= 1
        self._runs += 1
        self._average_s += (elapsed - self._average_s) * (0.2 if self._runs > 1 else 1.0)
        if (
            may_inline
            and self._runs >= INLINE_AFTER
            and self._average_s < INLINE_MAX_S
            and self._strikes < INLINE_STRIKES
            and not self._on_thread
        ):
            self.inline = True
        return result

    def _timed_execute(self, pb_requests: list[pb_utils.InferenceRequest]) -> tuple[Any, float]:
        start = time.perf_counter()
        result = self.model.execute(pb_requests)
        return result, time.perf_counter() - start

    # -- execution ------------------------------------------------------------------------
    def execute(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Synchronous form of :meth:`execute_async` (no event loop may be running here)."""
        return asyncio.run(self.execute_async(requests))

    async def execute_async(self, requests: list[InferenceRequest]) -> list[ExecuteResult]:
        """Hand all requests to ``execute`` at once, as Triton does with dynamic batching."""
        sent: list[list[Any]] = [[] for _ in requests]

        def collector(box: list[Any]) -> Callable[[Any, int], None]:
            def deliver(response: Any, _flags: int) -> None:
                if response is not None:
                    box.append(response)

            return deliver

        pb_requests = [
            self._pb_request(r, collector(box)) for r, box in zip(requests, sent, strict=True)
        ]
        try:
            responses = await self._call_execute(pb_requests)
        except Exception as exc:
            error = _raised(exc)
            return [error for _ in requests]
        return self._results(responses, sent, len(requests))

    async def stream(self, request: InferenceRequest) -> AsyncIterator[ExecuteResult]:
        """A decoupled model's responses to one request, each as soon as the model sends it.

        Ends after the response flagged FINAL; an exception from ``execute`` ends the stream
        with an error item (the responses sent before it are kept).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, int] | BaseException] = asyncio.Queue()

        def deliver(response: Any, flags: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (response, flags))

        pb_request = self._pb_request(request, deliver)

        async def run() -> None:
            try:
                await self._call_execute([pb_request], may_inline=False)
            except Exception as exc:
                queue.put_nowait(exc)

        task = asyncio.ensure_future(run())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    yield _raised(item)
                    return
                response, flags = item
                if response is not None:
                    yield response_result(response)
                if flags & FINAL:
                    return
        finally:
            if not task.done():
                task.add_done_callback(lambda _t: None)

    def finalize(self) -> None:
        """Call the model's ``finalize`` if it has one."""
        if hasattr(self.model, "finalize"):
            self.model.finalize()
        self._thread.shutdown(wait=False)
