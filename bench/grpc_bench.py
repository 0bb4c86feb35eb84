"""gRPC benchmark: platform gRPC vs platform HTTP vs real Triton gRPC (and Ray's gRPC proxy).

One python-backend ``add_sub`` model (FP32 ``[1,4]`` x 2), the same on every target, c=1/8/32:

* (a) platform gRPC: the ``grpc`` ingress's HAProxy front -> the model replica's own gRPC server;
* (a2) platform gRPC with ``front: python``: grpc.aio in the ingress -> DeploymentHandle -> model
  replica (the design before the HAProxy front);
* (b) platform HTTP: ``/v2/models/<m>/infer`` through the Serve ingress (wrk);
* (c) real Triton 2.51 gRPC;
* (d) Ray Serve's own gRPC proxy (``grpc_options``) -> a routing deployment -> the same model
  replica, with the ``application`` metadata tritonclient never sends: what the platform would
  run had it used Serve's proxy.

gRPC load comes from h2load (nghttp2's C HTTP/2 load generator: one connection carrying c streams,
as one ``tritonclient.grpc`` channel does), HTTP load from wrk, so on a small host the client
does not take the server's CPU; one more row drives (a) from a grpc.aio client in its own
process, the Python way. Failed calls are read from the servers' own statistics (h2load sees
HTTP statuses only). ``make bench BENCH_ARGS=grpc_bench``.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.loadgen import (
    LoadResult,
    require_h2load,
    require_wrk,
    run_h2load_grpc,
    run_wrk,
    table,
    write_section,
)

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "8"))
MODEL = "gbench_add_sub"
METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _grpc_load(
    target: str, body: bytes, concurrency: int, duration_s: float, metadata: Any, out: Any
) -> None:
    """Child process: ``concurrency`` callers for ``duration_s`` after a 1 s warm-up."""
    import grpc

    async def run() -> tuple[list[float], int]:
        options = [("grpc.max_receive_message_length", 2**31 - 1)]
        async with grpc.aio.insecure_channel(target, options=options) as channel:
            call = channel.unary_unary(METHOD)
            latencies: list[float] = []
            errors = 0
            start = time.perf_counter()
            warm = start + 1.0
            stop = warm + duration_s

            async def worker() -> None:
                nonlocal errors
                while (now := time.perf_counter()) < stop:
                    try:
                        await call(body, metadata=metadata, timeout=30)
                    except grpc.aio.AioRpcError:
                        errors += 1
                        continue
                    if now >= warm:
                        latencies.append(time.perf_counter() - now)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, errors

    latencies, errors = asyncio.run(run())
    out.put((latencies, errors))


def run_grpc(
    target: str, body: bytes, concurrency: int, metadata: Any = None, duration_s: float = 0
) -> LoadResult:
    """requests/s and latency percentiles of unary ModelInfer calls."""
    duration = duration_s or DURATION_S
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(
        target=_grpc_load, args=(target, body, concurrency, duration, metadata, queue)
    )
    proc.start()
    latencies, errors = queue.get(timeout=duration + 120)
    proc.join(timeout=30)
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        rps=len(latencies) / duration,
        p50_ms=ordered[len(ordered) // 2] * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        errors=errors,
    )


def _request_bodies() -> tuple[bytes, bytes]:
    from tritonclient.grpc import service_pb2 as pb

    a = np.ones((1, 4), dtype=np.float32)
    request = pb.ModelInferRequest(model_name=MODEL)
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="FP32", shape=[1, 4])
        request.raw_input_contents.append(a.tobytes())
    http = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": [1, 4], "data": a.ravel().tolist()}
            for n in ("INPUT0", "INPUT1")
        ]
    }
    return request.SerializeToString(), json.dumps(http).encode()


def _ray_proxy_router() -> Any:
    """A Serve deployment answering ModelInfer behind Serve's gRPC proxy, routing by handle."""
    from ray import serve

    from deployments.grpc_servicer import ModelRouter

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
    class RayProxyRouter:
        def __init__(self) -> None:
            self.models = ModelRouter("p-v2-{model}")

        async def ModelInfer(self, request: Any) -> Any:
            from tritonclient.grpc import service_pb2 as pb

            raw = request.SerializeToString()
            _code, payload = await self.models.call(request.model_name, "grpc_infer", raw)
            return pb.ModelInferResponse.FromString(payload)

    return RayProxyRouter.bind()


def _start(data_dir: Path) -> tuple[str, str, str, int]:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import free_port, ray_test_env

    os.environ.update(ray_test_env(fast_ingress=True))
    import ray
    from ray import serve

    from entrypoint.control_plane_app import build_control_plane
    from entrypoint.grpc_app import build_grpc_app

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=tempfile.mkdtemp(prefix="rgb-", dir="/tmp"),  # not /tmp/ray: other sessions
    )
    port, grpc_port, ray_grpc_port = free_port(), free_port(), free_port()
    python_front_port = free_port()
    serve.start(
        http_options={"host": "127.0.0.1", "port": port},
        grpc_options={
            "port": ray_grpc_port,
            "grpc_servicer_functions": [
                "tritonclient.grpc.service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server"
            ],
        },
    )
    url = f"http://127.0.0.1:{port}"
    serve.run(
        build_control_plane({"data_dir": str(data_dir)}), name="control-plane", route_prefix="/"
    )
    serve.run(
        build_grpc_app({"port": grpc_port, "public_url": url}), name="grpc", route_prefix=None
    )
    serve.run(
        build_grpc_app({"port": python_front_port, "public_url": url, "front": "python"}),
        name="grpc-python-front",
        route_prefix=None,
    )
    return url, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{python_front_port}", ray_grpc_port


def _wait_routed(model: str, timeout_s: float = 60.0) -> None:
    """Wait until the gRPC front routes ``model`` to its replica.

    h2load does not reconnect when a reload's old worker closes its connection (gRPC clients do).
    """
    from deployments.grpc_front import is_routed
    from deployments.grpc_routes import cluster_identity, routes_dir

    book = routes_dir(cluster_identity())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_routed(book, model):
            time.sleep(2.0)  # the old worker's connections close
            return
        time.sleep(0.2)
    raise RuntimeError(f"the gRPC front never routed {model}")


def _failures(stats_url: str) -> int:
    """Failed inferences so far in the model's statistics (h2load cannot see gRPC errors)."""
    body = httpx.get(stats_url, timeout=60).json()
    return sum(int(m["inference_stats"]["fail"]["count"]) for m in body["model_stats"])


def _row(name: str, results: dict[int, LoadResult], base: dict[int, LoadResult]) -> list[str]:
    cells = [name]
    for c in CONCURRENCY:
        r = results[c]
        ratio = r.rps / base[c].rps if base[c].rps else 0
        cells.append(
            f"{r.rps:,.0f} rps ({ratio:.2f}x); p50 {r.p50_ms:.1f} / p99 {r.p99_ms:.1f} ms"
            + (f"; {r.errors} errors" if r.errors else "")
        )
    return cells


def main() -> None:
    """Run the benchmark and print/write the table (docs/benchmarks.md, "gRPC")."""
    require_wrk()
    require_h2load()
    from ray import serve

    from tests.model_repos import write_add_sub

    tmp = Path(tempfile.mkdtemp(prefix="grpcbench-"))
    url, grpc_target, python_front, ray_grpc_port = _start(tmp / "data")
    repo = tmp / "data" / "store" / "models"
    write_add_sub(repo, name=MODEL)
    httpx.post(f"{url}/v2/repository/models/{MODEL}/load", timeout=300).raise_for_status()
    serve.run(_ray_proxy_router(), name="ray-grpc-router", route_prefix="/ray-grpc-router")
    _wait_routed(MODEL)
    grpc_body, http_body = _request_bodies()
    def h2(target: str, headers: dict[str, str] | None = None) -> Any:
        return lambda c: run_h2load_grpc(
            target, grpc_body, concurrency=c, duration_s=DURATION_S, headers=headers
        )

    targets: dict[str, Any] = {
        "(a) platform gRPC": h2(grpc_target),
        "(a') platform gRPC, grpc.aio load generator": lambda c: run_grpc(
            grpc_target, grpc_body, c
        ),
        "(a2) platform gRPC, front: python": h2(python_front),
        "(b) platform HTTP (wrk)": lambda c: run_wrk(
            f"{url}/v2/models/{MODEL}/infer", http_body, connections=c, duration_s=DURATION_S
        ),
        "(d) Ray Serve gRPC proxy + router": h2(
            f"127.0.0.1:{ray_grpc_port}", {"application": "ray-grpc-router"}
        ),
    }
    stats_url = dict.fromkeys(targets, f"{url}/v2/models/{MODEL}/stats")
    triton = None
    try:
        from tests.compat.tritonserver import start_tritonserver

        write_add_sub(tmp / "triton_repo", name=MODEL)
        triton = start_tritonserver(tmp / "triton_repo")
        httpx.post(
            f"{triton.base_url}/v2/repository/models/{MODEL}/load", timeout=120
        ).raise_for_status()
        triton_target = f"127.0.0.1:{triton.grpc_port}"
        triton_stats = f"{triton.base_url}/v2/models/{MODEL}/stats"
        targets["(c) real Triton 2.51 gRPC"] = h2(triton_target)
        stats_url["(c) real Triton 2.51 gRPC"] = triton_stats
        targets["(c') real Triton 2.51 gRPC, grpc.aio load generator"] = lambda c: run_grpc(
            triton_target, grpc_body, c
        )
        stats_url["(c') real Triton 2.51 gRPC, grpc.aio load generator"] = triton_stats
    except Exception as exc:
        print(f"real Triton not measured: {exc}")
    load = os.getloadavg()
    results: dict[str, dict[int, LoadResult]] = {}
    try:
        for c in CONCURRENCY:  # every target at one concurrency before the next: less drift
            for name, measure in targets.items():
                failed = _failures(stats_url[name])
                result = measure(c)
                result.errors += _failures(stats_url[name]) - failed
                results.setdefault(name, {})[c] = result
                print(name, c, round(result.rps), result.p50_ms, result.p99_ms, result.errors)
    finally:
        if triton is not None:
            triton.stop()
        serve.shutdown()
    base = results["(b) platform HTTP (wrk)"]
    rows = [_row(name, res, base) for name, res in sorted(results.items())]
    text = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} ({os.cpu_count()} cores, load average "
        f"{load[0]:.1f} at the start), HAProxy ingress + throughput-optimized handles. Model: "
        f"python-backend add_sub, FP32 [1,4] x 2, dynamic batching; {DURATION_S} s per cell. "
        "gRPC load: h2load (one HTTP/2 connection, c streams, one pre-serialized "
        "ModelInferRequest; rows (a') and (c') a grpc.aio client in its own process instead); "
        "HTTP load: wrk (c connections, JSON). Ratios are throughput relative to (b); errors "
        "are the servers' failed-inference counts. Cells run concurrency by concurrency, "
        "every target in turn.\n\n"
        + table(rows, ["target", *[f"c={c}" for c in CONCURRENCY]])
        + "\n"
    )
    print(text)
    write_section(ROOT / "docs" / "benchmarks.md", "gRPC", text)


if __name__ == "__main__":
    main()
