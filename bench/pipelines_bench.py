"""Pipelines benchmark: a 2-step ensemble and a BLS model, this platform beside a real Triton.

The same model directories (``tests/pipeline_repos.py``: ``pre`` x+1, ``post`` x*2, and a BLS
model calling ``add_sub`` with ``exec()``) are loaded on both. The platform runs the ensemble as
a deployment graph over the step models' own applications (``parameters.ray_fused: "false"``,
one handle hop per step) and fused (the default, ``ray_fused`` auto, which fuses these two small
CPU steps into the ensemble's replica). wrk, c=1/8/32; ratios are
throughput relative to Triton, and the fused ensemble's also to the platform's own single model
(``b_pre`` alone). Time to first streamed event (TTFT): ``/generate_stream`` on the same
decoupled model (one response per word, no delay) on both servers, sequential requests, median
and p90. Run: ``python -m bench.pipelines_bench``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section
from bench.v2_bench import _start_platform

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MODELS = ("b_ens", "b_ens1", "b_fused", "b_bls", "b_pre")
TTFT_REQUESTS = int(os.environ.get("BENCH_TTFT_REQUESTS", "200"))


def _write_repo(repo: Path) -> None:
    from tests.model_repos import write_add_sub
    from tests.pipeline_repos import (
        write_bls_sync_caller,
        write_decoupled_words,
        write_two_step_ensemble,
    )

    write_two_step_ensemble(repo, name="b_ens", pre="b_pre", post="b_post", ray_fused="false")
    write_two_step_ensemble(
        repo,
        name="b_ens1",
        pre="b_pre",
        post="b_post",
        ray_fused="false",
        ray_step_batches_in_flight="1",
    )
    # the default mode: ray_fused "auto" fuses a chain of small CPU steps
    write_two_step_ensemble(repo, name="b_fused", pre="b_pre", post="b_post")
    write_add_sub(repo, name="add_sub")  # BLS_SYNC_MODEL's default target
    write_bls_sync_caller(repo, name="b_bls")
    write_decoupled_words(repo, name="b_dec")


def _bare_chain_app():
    """Bare Ray Serve's form of the unfused ensemble.

    An HTTP ingress calling x+1, then x*2, each its own deployment, by DeploymentHandle: the
    cost of Serve's hops, with no platform code.
    """
    import numpy as np
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    options = {"ray_actor_options": {"num_cpus": 0}, "max_ongoing_requests": 64}

    @serve.deployment(name="BarePre", **options)
    class BarePre:
        async def __call__(self, x: np.ndarray) -> np.ndarray:
            return x + 1

    @serve.deployment(name="BarePost", **options)
    class BarePost:
        async def __call__(self, x: np.ndarray) -> np.ndarray:
            return x * 2

    @serve.deployment(name="BareChain", **options)
    class BareChain:
        def __init__(self, pre, post) -> None:
            self.pre, self.post = pre, post

        async def __call__(self, request: Request) -> JSONResponse:
            tensor = json.loads(await request.body())["inputs"][0]
            x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            y = await self.post.remote(await self.pre.remote(x))
            out = {"name": "OUT", "datatype": "FP32", "shape": list(y.shape)}
            return JSONResponse({"outputs": [{**out, "data": y.ravel().tolist()}]})

    return BareChain.bind(BarePre.bind(), BarePost.bind())


def _bodies() -> dict[str, bytes]:
    row = [0.5, 1.0, 1.5, 2.0]
    ens = {"inputs": [{"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": row}]}
    bls = {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": row}]}
    body = {m: json.dumps(ens).encode() for m in ("b_ens", "b_ens1", "b_fused")}
    body["b_bls"] = body["b_pre"] = json.dumps(bls).encode()
    return body


def ttft_ms(base_url: str, model: str, requests: int = TTFT_REQUESTS) -> tuple[float, float]:
    """Median and p90 ms from sending ``/generate_stream`` to the first event's bytes.

    A raw keep-alive socket (no client library in the timing), sequential requests.
    """
    parts = urlsplit(base_url)
    payload = json.dumps({"text_input": "one two three"}).encode()
    head = (
        f"POST /v2/models/{model}/generate_stream HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    samples = []
    for _ in range(requests + 10):
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.perf_counter()
            sock.sendall(head + payload)
            seen = b""
            while b"data: " not in seen:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"{model}: stream ended before its first event: {seen!r}")
                seen += chunk
            samples.append((time.perf_counter() - start) * 1000)
    samples = sorted(samples[10:])
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def _bases(name: str) -> list[str]:
    """What a target's throughput is compared with.

    Triton's same model, and for the fused ensemble also the platform's own single model.
    """
    if not name.startswith("platform"):
        return []
    model = name.split()[-1]
    bases = [f"Triton 2.51 {'b_ens' if model in ('b_fused', 'b_ens1') else model}"]
    if model in ("b_ens", "b_ens1"):
        bases.append("bare Ray Serve chain")
    if model == "b_fused":
        bases.append("platform b_pre")
    return bases


def _short(base: str) -> str:
    if base.startswith("Triton"):
        return "Triton"
    return "bare chain" if base.startswith("bare") else base.replace("platform ", "")


def _cell(r: LoadResult, ratios: list[str]) -> str:
    ratio = f" ({'; '.join(ratios)})" if ratios else ""
    errors = f"; {r.errors} errors" if r.errors else ""
    return f"{r.rps:,.0f} rps{ratio}; p50 {r.p50_ms:.1f} / p99 {r.p99_ms:.1f} ms{errors}"


def main() -> None:
    """Run the benchmark and print/write the table (docs/benchmarks.md, "Pipelines")."""
    require_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="pipebench-"))
    url = _start_platform(tmp / "data")
    from ray import serve

    repo = tmp / "data" / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    _write_repo(repo)
    for model in ("add_sub", *MODELS, "b_dec"):
        httpx.post(f"{url}/v2/repository/models/{model}/load", timeout=300).raise_for_status()
    bodies = _bodies()
    targets = {f"platform {m}": (f"{url}/v2/models/{m}/infer", bodies[m]) for m in MODELS}
    serve.run(_bare_chain_app(), name="bare-chain", route_prefix="/bare-chain")
    targets["bare Ray Serve chain"] = (f"{url}/bare-chain", bodies["b_ens"])
    triton = None
    try:
        from tests.compat.tritonserver import start_tritonserver

        triton_repo = tmp / "triton_repo"
        shutil.copytree(repo, triton_repo)
        for platform_only in ("b_fused", "b_ens1"):
            shutil.rmtree(triton_repo / platform_only)
        triton = start_tritonserver(triton_repo)
        for model in ("add_sub", "b_ens", "b_bls", "b_dec"):
            httpx.post(
                f"{triton.base_url}/v2/repository/models/{model}/load", timeout=120
            ).raise_for_status()
        for model in ("b_ens", "b_bls"):
            targets[f"Triton 2.51 {model}"] = (
                f"{triton.base_url}/v2/models/{model}/infer",
                bodies[model],
            )
    except Exception as exc:
        print(f"real Triton not measured: {exc}")
    results: dict[str, dict[int, LoadResult]] = {}
    paired: dict[tuple[str, str, int], list[float]] = {}  # (target, base, c) -> per-round ratios
    ttft: dict[str, tuple[float, float]] = {}
    try:
        ttft["platform"] = ttft_ms(url, "b_dec")
        if triton is not None:
            ttft["Triton 2.51"] = ttft_ms(triton.base_url, "b_dec")
        print("TTFT", ttft, flush=True)
        for target, body in targets.values():
            httpx.post(target, content=body, timeout=60).raise_for_status()
        # cell by cell, every target in turn, ROUNDS times: a change of host speed hits all
        # targets alike, and each ratio is taken within one round (paired), then the median
        for c in CONCURRENCY:
            rounds: dict[str, list[LoadResult]] = {name: [] for name in targets}
            for _ in range(ROUNDS):
                one = {
                    name: run_wrk(target, body, connections=c, duration_s=DURATION_S)
                    for name, (target, body) in targets.items()
                }
                for name, result in one.items():
                    rounds[name].append(result)
                    for base in _bases(name):
                        if base in one and one[base].rps:
                            paired.setdefault((name, base, c), []).append(
                                result.rps / one[base].rps
                            )
            for name, runs in rounds.items():
                results.setdefault(name, {})[c] = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
            print(c, {n: round(r[c].rps) for n, r in results.items()}, flush=True)
    finally:
        if triton is not None:
            triton.stop()
        serve.shutdown()
    rows = []
    for name, res in results.items():
        cells = []
        for c in CONCURRENCY:
            ratios = [
                f"{statistics.median(paired[(name, base, c)]):.2f}x {_short(base)}"
                for base in _bases(name)
                if (name, base, c) in paired
            ]
            cells.append(_cell(res[c], ratios))
        rows.append([name, *cells])
    ttft_rows = [[k, f"{m:.2f} ms", f"{p:.2f} ms"] for k, (m, p) in ttft.items()]
    if "platform" in ttft and "Triton 2.51" in ttft:
        gap = ttft["platform"][0] - ttft["Triton 2.51"][0]
        ttft_rows.append(["platform - Triton (median)", f"{gap:+.2f} ms", ""])
    mode = (
        "HAProxy ingress + throughput-optimized"
        if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1"
        else "default proxy"
    )
    text = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on this machine ({os.cpu_count()} cores), "
        f"Serve ingress: {mode}. `b_ens`: 2-step ensemble of python models (x+1, then x*2) "
        "calling the steps' own applications by DeploymentHandle (`ray_fused: false`; step "
        "calls that queue behind 2 in flight share the next hop); `b_ens1`: the same with "
        "`ray_step_batches_in_flight: 1`; `bare Ray Serve chain`: the same two steps as "
        "plain Serve deployments behind an HTTP ingress deployment, called by handle one after "
        "the other (Serve's own hop cost, no platform code); `b_fused`: the same ensemble "
        "in the default mode (`ray_fused` auto, which fuses these steps into its replica); "
        "`b_bls`: a python model whose `execute` calls "
        "`add_sub` with `exec()`; `b_pre`: the first step alone (the platform's single-model "
        "baseline for the fused ratio). JSON v2 request of one row of 4 FP32; wrk, 1 thread, "
        f"{DURATION_S} s per cell after a 2 s warm-up; concurrency by concurrency, every target "
        f"in turn, {ROUNDS} rounds: the cell is the median round, and each ratio (throughput "
        "against Triton's same model, the fused ensemble also against `b_pre`) the median of the "
        "ratios within a round.\n\n"
        + table(rows, ["target", *[f"c={c}" for c in CONCURRENCY]])
        + f"\n\nTime to first streamed event, `/generate_stream` on decoupled `b_dec` (3 words, "
        f"no delay), {TTFT_REQUESTS} sequential requests on fresh connections:\n\n"
        + table(ttft_rows, ["server", "median", "p90"])
        + f"\n\nLoad average at the end: {os.getloadavg()[0]:.1f}."
    )
    print(text)
    write_section(ROOT / "docs" / "benchmarks.md", "Pipelines: ensembles and BLS", text)


if __name__ == "__main__":
    main()
