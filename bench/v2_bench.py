"""Triton/KServe v2 benchmark: the same small model served three ways.

(a) this platform over ``/v2/models/<m>/infer``, (b) a bare Ray Serve deployment written here,
(c) a real tritonserver 2.51 (python backend, numpy forward: the wheel has no pytorch backend).

Throughput and p50/p99 at concurrency 1, 8, 32 with wrk; ratios are to (b). Also the time from
the load call to the first successful infer. Run: ``python -m bench.v2_bench`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "8"))
IN, OUT = 16, 4


def _write_model(repo: Path) -> Path:
    import torch

    model = repo / "bench_linear"
    (model / "1").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    layer = torch.nn.Linear(IN, OUT)
    torch.jit.script(layer).save(str(model / "1" / "model.pt"))
    (model / "config.pbtxt").write_text(
        textwrap.dedent(f"""
        name: "bench_linear"
        platform: "pytorch_libtorch"
        max_batch_size: 16
        input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ {IN} ] }} ]
        output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ {OUT} ] }} ]
        instance_group [ {{ kind: KIND_CPU count: 1 }} ]
    """)
    )
    weights = {"w": layer.weight.detach().tolist(), "b": layer.bias.detach().tolist()}
    return model, weights


def _write_triton_model(repo: Path, weights: dict) -> None:
    model = repo / "bench_linear"
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "config.pbtxt").write_text(
        textwrap.dedent(f"""
        name: "bench_linear"
        backend: "python"
        max_batch_size: 16
        input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ {IN} ] }} ]
        output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ {OUT} ] }} ]
        instance_group [ {{ kind: KIND_CPU count: 1 }} ]
    """)
    )
    (model / "1" / "model.py").write_text(
        textwrap.dedent(f"""
        import numpy as np
        import triton_python_backend_utils as pb_utils

        W = np.array({weights["w"]}, dtype=np.float32)
        B = np.array({weights["b"]}, dtype=np.float32)


        class TritonPythonModel:
            def execute(self, requests):
                out = []
                for r in requests:
                    x = pb_utils.get_input_tensor_by_name(r, "INPUT__0").as_numpy()
                    y = pb_utils.Tensor("OUTPUT__0", x @ W.T + B)
                    out.append(pb_utils.InferenceResponse([y]))
                return out
    """)
    )


def _bare_app(model_path: str):
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    @serve.deployment(name="BareTorch", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
    class BareTorch:
        """Minimal v2-shaped JSON endpoint doing the same TorchScript forward."""

        def __init__(self, path: str) -> None:
            import torch

            torch.set_num_threads(1)
            self.torch = torch
            self.module = torch.jit.load(path)

        async def __call__(self, request: Request) -> JSONResponse:
            body = json.loads(await request.body())
            tensor = body["inputs"][0]
            x = self.torch.tensor(tensor["data"], dtype=self.torch.float32).reshape(tensor["shape"])
            with self.torch.inference_mode():
                y = self.module(x)
            return JSONResponse(
                {
                    "model_name": "bare",
                    "model_version": "1",
                    "outputs": [
                        {
                            "name": "OUTPUT__0",
                            "datatype": "FP32",
                            "shape": list(y.shape),
                            "data": y.flatten().tolist(),
                        }
                    ],
                }
            )

    return BareTorch.bind(model_path)


def _start_platform(data_dir: Path):
    sys.path.insert(0, str(ROOT))
    from tests.conftest import free_port, ray_test_env

    os.environ.update(
        ray_test_env(fast_ingress=os.environ.get("PLATFORM_FAST_INGRESS", "1") == "1")
    )
    import ray
    from ray import serve

    from entrypoint.control_plane_app import build_control_plane

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_control_plane({"data_dir": str(data_dir)}), name="control-plane", route_prefix="/"
    )
    return f"http://127.0.0.1:{port}"


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
    """Run the benchmark and print/write the table."""
    require_wrk()
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="v2bench-"))
    url = _start_platform(tmp / "data")
    from ray import serve

    repo = tmp / "data" / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    model_dir, weights = _write_model(repo)
    started = time.perf_counter()
    httpx.post(f"{url}/v2/repository/models/bench_linear/load", timeout=300).raise_for_status()
    x = np.random.default_rng(0).random((1, IN), dtype=np.float32)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT__0",
                    "shape": [1, IN],
                    "datatype": "FP32",
                    "data": x.ravel().tolist(),
                }
            ]
        }
    ).encode()
    while (
        httpx.post(f"{url}/v2/models/bench_linear/infer", content=body, timeout=30).status_code
        != 200
    ):
        time.sleep(0.05)
    load_to_first_s = time.perf_counter() - started
    serve.run(_bare_app(str(model_dir / "1" / "model.pt")), name="bare", route_prefix="/bare")

    targets = {
        "(a) platform v2": f"{url}/v2/models/bench_linear/infer",
        "(b) bare Ray Serve": f"{url}/bare",
    }
    triton = None
    try:
        from tests.compat.tritonserver import start_tritonserver

        triton_repo = tmp / "triton_repo"
        _write_triton_model(triton_repo, weights)
        triton = start_tritonserver(triton_repo)
        httpx.post(
            f"{triton.base_url}/v2/repository/models/bench_linear/load", timeout=120
        ).raise_for_status()
        targets["(c) real Triton 2.51 (python backend)"] = (
            f"{triton.base_url}/v2/models/bench_linear/infer"
        )
    except Exception as exc:
        print(f"real Triton not measured: {exc}")
    results: dict[str, dict[int, LoadResult]] = {}
    try:
        for name, target in targets.items():
            results[name] = {
                c: run_wrk(target, body, connections=c, duration_s=DURATION_S) for c in CONCURRENCY
            }
            print(
                name,
                {c: (round(r.rps), r.p50_ms, r.p99_ms, r.errors) for c, r in results[name].items()},
                flush=True,
            )
    finally:
        if triton is not None:
            triton.stop()
        serve.shutdown()
    base = results["(b) bare Ray Serve"]
    rows = [_row(name, res, base) for name, res in results.items()]
    mode = (
        "HAProxy ingress + throughput-optimized"
        if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1"
        else "default proxy"
    )
    text = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on this machine ({os.cpu_count()} cores), "
        f"Serve ingress: {mode}. "
        f"Model: TorchScript `nn.Linear({IN}, {OUT})`, JSON v2 request of one row; wrk, 1 thread, "
        f"{DURATION_S} s per cell after a 2 s warm-up. Ratios are throughput relative to (b).\n\n"
        + table(rows, ["target", *[f"c={c}" for c in CONCURRENCY]])
        + f"\n\nLoad call to first successful infer (platform): **{load_to_first_s:.1f} s**.\n"
    )
    print(text)
    write_section(ROOT / "docs" / "benchmarks.md", "Triton/KServe v2", text)


if __name__ == "__main__":
    main()
