"""``model_warmup``: the config's samples run on every new replica before it takes requests.

As on Triton 2.51 (reference §6): each sample runs ``count`` times (default 1), each time as one
execution of ``batch_size`` requests of batch 1 (``batch_size: 0`` never runs); the data is zeros
or random; warmup counts in the model's statistics; a failing sample fails the load, naming it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import numpy as np

from deployments.backends.base import InferenceRequest
from deployments.contracts.datatypes import config_to_api, numpy_dtype
from deployments.contracts.errors import ModelConfigError
from deployments.contracts.specs import ModelSpec
from deployments.contracts.stats import StatsBook


def _array(spec: ModelSpec, entry: dict[str, Any], rng: np.random.Generator) -> Any:
    datatype = config_to_api(str(entry.get("data_type", "TYPE_FP32")))
    dims = [int(d) for d in entry.get("dims", [])]
    shape = ([1] if spec.max_batch_size > 0 else []) + dims
    count = math.prod(shape)
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = [
            b"" if entry.get("zero_data") else bytes(rng.integers(97, 123, 8)) for _ in range(count)
        ]
        return array.reshape(shape)
    dtype = numpy_dtype(datatype)
    if entry.get("random_data"):
        if dtype.kind == "f":
            return rng.random(shape).astype(dtype)
        if dtype.kind == "b":
            return rng.integers(0, 2, shape).astype(dtype)
        return rng.integers(0, 10, shape).astype(dtype)
    return np.zeros(shape, dtype=dtype)


def _requests(spec: ModelSpec, sample: dict[str, Any]) -> list[InferenceRequest]:
    rng = np.random.default_rng(0)
    inputs = sample.get("inputs", {})
    return [
        InferenceRequest(inputs={name: _array(spec, entry, rng) for name, entry in inputs.items()})
        for _ in range(int(sample.get("batch_size", 0)))
    ]


async def _run_sample(backend: Any, requests: list[InferenceRequest], decoupled: bool) -> list[Any]:
    if decoupled:
        results = []
        for request in requests:
            results.extend([r async for r in backend.stream(request)])
        return results
    execute_async = getattr(backend, "execute_async", None)
    if execute_async is not None:
        return list(await execute_async(requests))
    return list(backend.execute(requests))


def warm_up(spec: ModelSpec, backends: dict[int, Any], book: StatsBook) -> None:
    """Run every warmup sample on every served version.

    The samples run in a thread of their own, which has no event loop whatever the caller runs.

    Raises:
        ModelConfigError: a sample failed (the load fails with Triton's wording).
    """
    if not spec.warmup:
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for version, backend in backends.items():
                for sample in spec.warmup:
                    _warm_version(spec, version, backend, sample, book)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"{spec.name}-warmup")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _warm_version(
    spec: ModelSpec, version: int, backend: Any, sample: dict[str, Any], book: StatsBook
) -> None:
    name = sample.get("name", "")
    for _ in range(max(int(sample.get("count", 1) or 1), 1)):
        requests = _requests(spec, sample)
        if not requests:
            return
        missing = [n for n in spec.required_inputs if n not in requests[0].inputs]
        if missing:
            raise ModelConfigError(
                f"load failed for model '{spec.name}': version {version} is at UNAVAILABLE "
                f"state: Invalid argument: failed to run warmup sample '{name}': expected "
                f"{len(spec.required_inputs)} inputs but got {len(requests[0].inputs)} inputs, "
                f"missing required input(s) {missing}"
            )
        start = time.perf_counter_ns()
        results = asyncio.run(_run_sample(backend, requests, spec.decoupled))
        elapsed = time.perf_counter_ns() - start
        errors = [r for r in results if isinstance(r, Exception)]
        book.execution(spec.name, version, batch_size=len(requests), infer_ns=elapsed)
        for _request in requests:
            book.request(spec.name, version, ok=not errors, total_ns=elapsed, infer_ns=elapsed)
        if errors:
            detail = "; ".join(getattr(e, "message", str(e)) for e in errors)
            raise ModelConfigError(
                f"load failed for model '{spec.name}': version {version} is at UNAVAILABLE "
                f"state: Invalid argument: failed to run warmup sample '{name}': {detail}"
            )
