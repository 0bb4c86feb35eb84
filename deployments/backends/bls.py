"""Business logic scripting: ``pb_utils.InferenceRequest(...).exec()`` / ``async_exec()``.

A python model's BLS request runs on another model of this platform by DeploymentHandle, on
the target's own application (``p-v2-<model>``, deployment ``TritonModel``, method
``infer_tensors``): never back through HTTP and the ingress (DESIGN addition 11). The target
counts the request in its own statistics.

With ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` a handle works only inside a running event loop
(DESIGN "Measured fact"), so ``async_exec`` awaits the handle on the caller's loop, and the
synchronous ``exec``, which model code calls from the execute thread (or from threads of its
own), hands the call to one private event-loop thread and waits there: the replica's event
loop never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import numpy as np
from ray import serve

from deployments.backends import triton_python_backend_utils as pb_utils
from deployments.contracts.app_args import TRITON_MODEL_DEPLOYMENT

logger = logging.getLogger(__name__)

APP_TEMPLATE = "p-v2-{model}"


def _error(model: str, message: str) -> pb_utils.InferenceResponse:
    """Triton's BLS error response: code INTERNAL whatever the cause (reference §2)."""
    return pb_utils.InferenceResponse(
        error=pb_utils.TritonError(
            f"Model {model} - Error when running inference: {message}",
            pb_utils.TritonError.INTERNAL,
        )
    )


def _not_ready(model: str, target: str | None = None) -> pb_utils.InferenceResponse:
    return _error(
        model,
        f"Failed for execute the inference request. Model '{target or model}' is not ready.",
    )


def as_bytes(array: Any) -> Any:
    """BYTES tensors hold bytes after a trip through Triton; a model may have built them of str."""
    if getattr(array, "dtype", None) == np.object_:
        out = array.copy()
        out.ravel()[:] = [v.encode() if isinstance(v, str) else v for v in array.ravel()]
        return out
    return array


class _PrivateLoop:
    """One event-loop thread for synchronous ``exec()`` calls from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Schedule ``coro`` on the loop."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="bls-loop", daemon=True).start()
                self._loop = loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop and wait (never from the loop itself)."""
        return self.submit(coro).result()

    async def run_async(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop, awaited from another loop."""
        return await asyncio.wrap_future(self.submit(coro))


class BlsRunner:
    """Runs BLS requests on this platform's models (one per replica process)."""

    def __init__(self, app_template: str = APP_TEMPLATE) -> None:
        self.app_template = app_template
        self._private = _PrivateLoop()
        # each loop's handles are its own (a handle is used on one event loop)
        self._handles: dict[tuple[int, str, str], Any] = {}

    async def _handle(self, model: str, stream: bool, method: str | None = None) -> Any:
        method = method or ("infer_tensors_stream" if stream else "infer_tensors")
        key = (id(asyncio.get_running_loop()), model, method)
        cached = self._handles.get(key)
        if cached is not None:
            return cached
        app = self.app_template.replace("{model}", model)
        # A controller round trip (blocking) the first time only: off the loop.
        found = await asyncio.to_thread(serve.get_deployment_handle, TRITON_MODEL_DEPLOYMENT, app)
        # plain pickle: the arguments are builtins and numpy arrays, so cloudpickle's
        # by-value functions are never needed, and the C pickler is cheaper per hop
        handle = found.options(
            method_name=method,
            stream=stream,
            request_serialization="pickle",
            response_serialization="pickle",
        )
        self._handles[key] = handle
        return handle

    @staticmethod
    def _arguments(
        request: pb_utils.InferenceRequest,
    ) -> tuple[int, dict[str, Any], list[str], str, str]:
        inputs = {t.name(): t.as_numpy() for t in request.inputs()}
        return (
            request.model_version(),
            inputs,
            request.requested_output_names(),
            request.request_id(),
            request.parameters(),
        )

    @staticmethod
    def _response(result: tuple[str, Any], model: str) -> pb_utils.InferenceResponse:
        kind, value = result
        if kind == "ok":
            return pb_utils.InferenceResponse(
                output_tensors=[pb_utils.Tensor(k, as_bytes(v)) for k, v in value.items()]
            )
        if kind == "not_ready":
            return _not_ready(model, value)
        return _error(model, str(value))

    async def call(self, *args: Any) -> tuple[str, Any]:
        """:meth:`call_here` on the private loop, awaited from any loop."""
        result: tuple[str, Any] = await self._private.run_async(self.call_here(*args))
        return result

    async def call_here(
        self,
        model: str,
        version: int,
        inputs: dict[str, Any],
        requested: list[str],
        request_id: str,
        parameters: str | dict[str, Any],
        timeout_s: float | None,
    ) -> tuple[str, Any]:
        """One call of ``model``'s ``infer_tensors`` (see ``deployments.model_pipelines``).

        Returns:
            ``("ok", outputs)``, ``("invalid"|"error", message)``, ``("not_ready", model)`` or
            ``("timeout", message)``; never raises for a missing or failing model.
        """
        try:
            handle = await self._handle(model, stream=False)
        except Exception as exc:  # KeyError: no such application; RayServeException
            logger.info("target %s has no application: %s", model, exc)
            return ("not_ready", model)
        response = handle.remote(version, inputs, requested, request_id, parameters)
        try:
            async with asyncio.timeout(timeout_s):
                result: tuple[str, Any] = await response
        except TimeoutError:
            response.cancel()
            return ("timeout", f"Request timeout expired after {timeout_s} s")
        except Exception as exc:  # the application is going away, its replica died...
            logger.info("call to %s failed: %s", model, exc)
            self._forget(model)
            return ("not_ready", model)
        return result

    async def call_many_here(
        self, model: str, calls: list[tuple[int, dict[str, Any], list[str], str, Any]]
    ) -> list[tuple[str, Any]]:
        """Several calls of ``model`` in one hop (``infer_tensors_batch``), on this loop.

        Each call is ``(version, inputs, requested, request_id, parameters)`` and gets the tuple
        :meth:`call_here` would give it; a missing or dying target answers ``("not_ready",
        model)`` for all of them.
        """
        try:
            handle = await self._handle(model, stream=False, method="infer_tensors_batch")
        except Exception as exc:  # KeyError: no such application; RayServeException
            logger.info("target %s has no application: %s", model, exc)
            return [("not_ready", model)] * len(calls)
        try:
            results: list[tuple[str, Any]] = await handle.remote(calls)
        except Exception as exc:  # the application is going away, its replica died...
            logger.info("call to %s failed: %s", model, exc)
            self._forget(model)
            return [("not_ready", model)] * len(calls)
        return results

    async def stream_here(
        self,
        model: str,
        version: int,
        inputs: dict[str, Any],
        requested: list[str],
        request_id: str,
        parameters: str | dict[str, Any],
    ) -> AsyncIterator[tuple[str, Any]]:
        """Every response of a decoupled ``model`` (``infer_tensors_stream``), on this loop.

        Yields the tuples of :meth:`call_here`; a missing or dying target ends with
        ``("not_ready", model)``.
        """
        try:
            handle = await self._handle(model, stream=True)
        except Exception as exc:  # KeyError: no such application; RayServeException
            logger.info("target %s has no application: %s", model, exc)
            yield ("not_ready", model)
            return
        try:
            async for result in handle.remote(version, inputs, requested, request_id, parameters):
                yield result
        except Exception as exc:
            logger.info("stream from %s failed: %s", model, exc)
            self._forget(model)
            yield ("not_ready", model)

    async def run(self, request: pb_utils.InferenceRequest) -> pb_utils.InferenceResponse:
        """One BLS request on the current event loop; every failure is an error response."""
        model = request.model_name()
        if not model:
            return _error(model, "the BLS request names no model")
        timeout_s = request.timeout() / 1e6 if request.timeout() else None
        version, inputs, requested, request_id, parameters = self._arguments(request)
        result = await self.call_here(
            model, version, inputs, requested, request_id, parameters, timeout_s
        )
        return self._response(result, model)

    async def stream(
        self, request: pb_utils.InferenceRequest
    ) -> AsyncIterator[pb_utils.InferenceResponse]:
        """A decoupled BLS request: every response of the target, then an empty final one."""
        model = request.model_name()
        try:
            handle = await self._handle(model, stream=True)
            async for result in handle.remote(*self._arguments(request)):
                yield self._response(result, model)
        except Exception as exc:
            logger.info("BLS stream to %s failed: %s", model, exc)
            self._forget(model)
            yield _not_ready(model)
            return
        yield pb_utils.InferenceResponse()  # Triton ends the iterator with an empty final one

    def _forget(self, model: str) -> None:
        for key in [k for k in self._handles if k[1] == model]:
            self._handles.pop(key, None)

    def exec(self, request: pb_utils.InferenceRequest, decoupled: bool) -> Any:
        """Synchronous BLS: runs on the private loop, so no event loop of the caller blocks."""
        if decoupled:
            return iter(self._private.run(self._collect(request)))
        return self._private.run(self.run(request))

    async def _collect(self, request: pb_utils.InferenceRequest) -> list[Any]:
        return [r async for r in self.stream(request)]

    async def async_exec(self, request: pb_utils.InferenceRequest, decoupled: bool) -> Any:
        """``await request.async_exec()``: on the caller's loop."""
        if decoupled:
            return iter(await self._private.run_async(self._collect(request)))
        return await self._private.run_async(self.run(request))
