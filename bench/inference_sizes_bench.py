"""Inference across model sizes: one python-backend ``model.py``, three servers, one run.

The model does numpy work of about 0.05, 0.5, 2 and 10 ms per request (``np.sin`` passes over
512 floats, single-threaded; the pass count is calibrated once here and written into every
config, so every server does the same work). It is served by (a) this platform (``/v2`` load of
the model directory), (b) a bare Ray Serve deployment running the same numpy work behind a
minimal v2-shaped JSON endpoint, (c) the real tritonserver 2.51 on the same model directory.
Each cell: wrk, 1 thread, c=1/8/32; with and without ``dynamic_batching``, one and two
instances (Triton ``instance_group.count``, Serve replicas). Ratios: platform / Triton and
platform / bare Serve, measured side by side.

Default grid (a few minutes): every size without batching on one instance, plus batching and two
instances for the 2 ms model. ``--full`` runs every combination. Run:
``python -m bench.inference_sizes_bench [--full] [--sizes 2,10] [--duration 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section
from bench.v2_bench import _start_platform

ROOT = Path(__file__).resolve().parent.parent
SIZES_MS = (0.05, 0.5, 2.0, 10.0)
CONCURRENCY = (1, 8, 32)
SECTION = "Inference across model sizes"

WORK_SRC = textwrap.dedent("""
    import numpy as np

    _A = np.linspace(0.0, 1.0, 512)


    def work(x, passes):
        acc = 0.0
        for _ in range(passes):
            acc += float(np.sin(_A).sum())
        return (x + acc * 0.0).astype(np.float32)
""")

MODEL_PY = WORK_SRC + textwrap.dedent("""
    import json

    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def initialize(self, args):
            params = json.loads(args["model_config"])["parameters"]
            self.passes = int(params["passes"]["string_value"])

        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                y = pb_utils.Tensor("OUTPUT0", work(x, self.passes))
                responses.append(pb_utils.InferenceResponse(output_tensors=[y]))
            return responses
""")


@dataclass(frozen=True)
class Variant:
    """One model configuration served by all three servers."""

    work_ms: float
    batching: bool
    instances: int

    @property
    def name(self) -> str:
        """Model (and app) name: ``sz_<ms>_b<0|1>_i<n>``."""
        ms = f"{self.work_ms:g}".replace(".", "p")
        return f"sz_{ms}_b{int(self.batching)}_i{self.instances}"

    @property
    def label(self) -> str:
        """Row label."""
        batching = "dyn. batching" if self.batching else "no batching"
        return f"{self.work_ms:g} ms, {batching}, {self.instances} inst."


def calibrate(target_ms: float) -> int:
    """Passes of the numpy work that take about ``target_ms`` here (best of 5 timings)."""
    namespace: dict[str, Any] = {}
    exec(WORK_SRC, namespace)
    import numpy as np

    x = np.zeros((1, 4), dtype=np.float32)
    namespace["work"](x, 50)
    best = min(_timed(namespace["work"], x, 200) for _ in range(5))
    return max(1, round(target_ms / (best / 200)))


def _timed(fn: Any, x: Any, passes: int) -> float:
    start = time.perf_counter()
    fn(x, passes)
    return (time.perf_counter() - start) * 1000


def write_model(repo: Path, variant: Variant, passes: int) -> Path:
    """The model directory (same files for the platform and Triton)."""
    model = repo / variant.name
    (model / "1").mkdir(parents=True, exist_ok=True)
    batching = "dynamic_batching { }\n" if variant.batching else ""
    (model / "config.pbtxt").write_text(
        f'name: "{variant.name}"\nbackend: "python"\nmax_batch_size: 8\n'
        'input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        f"instance_group [ {{ kind: KIND_CPU count: {variant.instances} }} ]\n"
        f"{batching}"
        f'parameters {{ key: "passes" value: {{ string_value: "{passes}" }} }}\n'
    )
    (model / "1" / "model.py").write_text(MODEL_PY)
    return model


def bare_app(variant: Variant, passes: int) -> Any:
    """Bare Ray Serve: the same numpy work behind a minimal v2-shaped JSON endpoint."""
    import numpy as np
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(name="BareSizes", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
    class BareSizes:
        def __init__(self, passes: int, batching: bool) -> None:
            namespace: dict[str, Any] = {}
            exec(WORK_SRC, namespace)
            self.work = namespace["work"]
            self.passes = passes
            self.batching = batching

        @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
        async def batched(self, xs: list[Any]) -> list[Any]:
            return [self.work(x, self.passes) for x in xs]

        async def __call__(self, request: Request) -> JSONResponse:
            body = json.loads(await request.body())
            tensor = body["inputs"][0]
            x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            y = await self.batched(x) if self.batching else self.work(x, self.passes)
            return JSONResponse(
                {
                    "model_name": "bare",
                    "model_version": "1",
                    "outputs": [
                        {
                            "name": "OUTPUT0",
                            "datatype": "FP32",
                            "shape": list(y.shape),
                            "data": y.ravel().tolist(),
                        }
                    ],
                }
            )

    return BareSizes.options(num_replicas=variant.instances).bind(passes, variant.batching)


def _grid(args: argparse.Namespace) -> list[Variant]:
    sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES_MS)
    if args.full:
        return [Variant(s, b, i) for s in sizes for b in (False, True) for i in (1, 2)]
    grid = [Variant(s, False, 1) for s in sizes]
    if 2.0 in sizes:
        grid += [Variant(2.0, True, 1), Variant(2.0, False, 2)]
    return grid


def _cell(r: LoadResult, ratios: list[tuple[str, LoadResult | None]]) -> str:
    parts = [f"{r.rps:,.0f} rps"]
    parts += [f"{n} {r.rps / b.rps:.2f}x" for n, b in ratios if b is not None and b.rps]
    errors = f"; {r.errors} errors" if r.errors else ""
    return f"{'; '.join(parts)}; p50 {r.p50_ms:.1f} ms{errors}"


def _measure(target: str, body: bytes, concurrency: tuple[int, ...], duration_s: int) -> Any:
    response = httpx.post(target, content=body, timeout=60)
    response.raise_for_status()
    return {
        c: run_wrk(target, body, connections=c, duration_s=duration_s, warmup_s=1)
        for c in concurrency
    }


def main(argv: list[str] | None = None) -> None:
    """Run the grid and print/write the table (docs/benchmarks.md, this section)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every size x batching x instances")
    parser.add_argument("--sizes", default="", help="comma-separated work in ms (default all)")
    parser.add_argument("--concurrency", default="1,8,32", help="wrk connections, comma-separated")
    parser.add_argument(
        "--duration",
        type=int,
        default=int(os.environ.get("BENCH_DURATION_S", "3")),
        help="seconds per cell (after a 1 s warm-up)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args(argv)
    concurrency = tuple(int(c) for c in args.concurrency.split(","))
    require_wrk()
    grid = _grid(args)
    passes = {ms: calibrate(ms) for ms in sorted({v.work_ms for v in grid})}
    print("numpy passes per request:", passes, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="sizesbench-"))
    url = _start_platform(tmp / "data")
    from ray import serve

    from tests.compat.tritonserver import start_tritonserver

    repo = tmp / "data" / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    triton_repo = tmp / "triton_repo"
    triton_repo.mkdir()
    triton = start_tritonserver(triton_repo)
    row = {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]}
    body = json.dumps(row).encode()
    results: dict[Variant, dict[str, dict[int, LoadResult]]] = {}
    try:
        for variant in grid:
            model = write_model(repo, variant, passes[variant.work_ms])
            shutil.copytree(model, triton_repo / variant.name)
            load = f"/v2/repository/models/{variant.name}/load"
            httpx.post(url + load, timeout=300).raise_for_status()
            httpx.post(triton.base_url + load, timeout=120).raise_for_status()
            serve.run(
                bare_app(variant, passes[variant.work_ms]),
                name=variant.name,
                route_prefix=f"/bare/{variant.name}",
            )
            infer = f"/v2/models/{variant.name}/infer"
            targets = {
                "platform": url + infer,
                "bare Serve": f"{url}/bare/{variant.name}",
                "Triton 2.51": triton.base_url + infer,
            }
            results[variant] = {}
            for server, target in targets.items():
                results[variant][server] = _measure(target, body, concurrency, args.duration)
                print(
                    variant.label,
                    server,
                    {c: round(r.rps) for c, r in results[variant][server].items()},
                    flush=True,
                )
            httpx.post(f"{url}/v2/repository/models/{variant.name}/unload", timeout=120)
            httpx.post(f"{triton.base_url}/v2/repository/models/{variant.name}/unload", timeout=60)
            serve.delete(variant.name)
    finally:
        triton.stop()
        load_avg = os.getloadavg()
        serve.shutdown()
    text = _report(results, concurrency, args.duration, passes, load_avg)
    print(text)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", SECTION, text)


def _report(
    results: dict[Variant, dict[str, dict[int, LoadResult]]],
    concurrency: tuple[int, ...],
    duration_s: int,
    passes: dict[float, int],
    load_avg: tuple[float, float, float],
) -> str:
    rows = []
    for variant, by_server in results.items():
        for server, res in by_server.items():
            ratios: list[tuple[str, LoadResult | None]] = []
            cells = []
            for c in concurrency:
                if server == "platform":
                    ratios = [
                        ("vs Triton", by_server["Triton 2.51"][c]),
                        ("vs bare", by_server["bare Serve"][c]),
                    ]
                cells.append(_cell(res[c], ratios))
            rows.append([variant.label, server, *cells])
    mode = (
        "HAProxy ingress + throughput-optimized"
        if os.environ.get("PLATFORM_FAST_INGRESS", "1") == "1"
        else "default proxy"
    )
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on this machine ({os.cpu_count()} cores, "
        f"load average at the end {load_avg[0]:.1f} / {load_avg[1]:.1f} / {load_avg[2]:.1f}), "
        f"Serve ingress: {mode}. One python-backend `model.py` doing numpy work per request "
        f"(passes per request: {passes}); JSON v2 request of one FP32 row of 4; wrk, 1 thread, "
        f"{duration_s} s per cell after a 1 s warm-up. The platform's cells carry its ratio to "
        "Triton and to bare Serve in the same run.\n\n"
        + table(rows, ["model", "server", *[f"c={c}" for c in concurrency]])
    )


if __name__ == "__main__":
    main()
