"""Apps gateway benchmark: direct v2 inference vs the same model through an app route.

The same model is called (a) directly on ``/v2/models/<m>/infer`` and through an MLServe app
route ``/apps/<app>/<m>`` with a consumer's API key: (b) with the gateway's default
``builtin_handles: auto``, (c) with the gateway redeployed with ``builtin_handles: on``.

Throughput and p50/p99 at concurrency 1, 8, 32 with wrk, the throughput ratios (b)/(a), (c)/(a)
and the gateway's added p50 latency. Run: ``python -m bench.gateway_bench`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import httpx

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section
from bench.v2_bench import IN, _write_model

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "8"))
ADMIN = ("admin", "admin")


def _start_platform(data_dir: Path) -> str:
    """Ray + Serve + the control plane on a free port (``public_url`` set, the gateway needs it)."""
    import sys

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
    url = f"http://127.0.0.1:{port}"
    serve.run(
        build_control_plane({"data_dir": str(data_dir), "public_url": url}),
        name="control-plane",
        route_prefix="/",
    )
    return url


def _write_mlp(root: Path, name: str, hidden: int) -> Path:
    """A TorchScript MLP ``16 -> hidden -> hidden -> 4`` (a few ms per forward at 4096)."""
    import torch

    model = root / name
    (model / "1").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(IN, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 4),
    )
    torch.jit.script(net).save(str(model / "1" / "model.pt"))
    (model / "config.pbtxt").write_text(
        f'name: "{name}"\nplatform: "pytorch_libtorch"\nmax_batch_size: 16\n'
        f'input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ {IN} ] }} ]\n'
        'output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        "instance_group [ { kind: KIND_CPU count: 1 } ]\n"
    )
    return model


def _setup(url: str, model_dirs: list[Path]) -> str:
    """Upload, load on the built-in server, and expose the models through an app; returns a key."""
    api = httpx.Client(base_url=url, auth=ADMIN, timeout=300)
    deadline = time.monotonic() + 60
    while api.get("/api/tritons").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    key = api.post("/api/users", json={"name": "bench", "password": "bench-pw"}).json()["key"]
    api.post("/api/apps", json={"name": "bench"}).raise_for_status()
    api.post("/api/users/bench/apps/bench/auth").raise_for_status()
    for model_dir in model_dirs:
        name = model_dir.name
        files = [
            ("files[]", ("config.pbtxt", (model_dir / "config.pbtxt").read_bytes())),
            ("files[]", ("1/model.pt", (model_dir / "1" / "model.pt").read_bytes())),
        ]
        api.post("/api/models", data={"name": name}, files=files).raise_for_status()
        api.post(f"/api/models/{name}/load", json={"triton_id": 0}).raise_for_status()
        api.post(f"/api/apps/bench/routes/{name}").raise_for_status()
    return str(key)


def _wait_ok(url: str, body: bytes, headers: dict[str, str]) -> str:
    """Wait for a 200; returns the ``X-MLServe-Upstream`` it came through (gateway only)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=30)
            if resp.status_code == 200:
                return resp.headers.get("x-mlserve-upstream", "")
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    last = httpx.post(url, content=body, headers=headers, timeout=30)
    raise RuntimeError(f"{url} never answered 200: {last.status_code} {last.text[:300]}")


MODELS = {
    "gw_bench": "TorchScript `nn.Linear(16, 4)` (tiny: the worst case for relative overhead)",
    "gw_bench_mlp": "TorchScript MLP 16-4096-4096-4 (a few ms per forward)",
}


def main() -> None:
    """Run the benchmark and print/write the tables."""
    require_wrk()
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    url = _start_platform(tmp / "data")
    from ray import serve

    tiny, _weights = _write_model(tmp / "src")
    (tiny / "config.pbtxt").write_text(
        (tiny / "config.pbtxt").read_text().replace("bench_linear", "gw_bench")
    )
    tiny = tiny.rename(tmp / "src" / "gw_bench")
    mlp = _write_mlp(tmp / "src", "gw_bench_mlp", 4096)
    key = _setup(url, [tiny, mlp])
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
    results: dict[str, dict[str, dict[int, LoadResult]]] = {model: {} for model in MODELS}
    via: dict[str, str] = {}
    gateway_args = _gateway_args(tmp / "data")
    try:
        for mode in ("auto", "on"):
            if mode == "on":
                _redeploy_gateway({**gateway_args, "builtin_handles": "on"})
            for model in MODELS:
                gated = (f"{url}/apps/bench/{model}", key)
                targets = (
                    {
                        f"(a) direct /v2/models/{model}/infer": (
                            f"{url}/v2/models/{model}/infer",
                            "",
                        ),
                        "(b) gateway, builtin_handles auto": gated,
                    }
                    if mode == "auto"
                    else {"(c) gateway, builtin_handles on": gated}
                )
                for name, (target, apikey) in targets.items():
                    headers = {"apikey": apikey} if apikey else {}
                    seen = _wait_ok(target, body, headers)
                    if seen:
                        via[name[:3]] = seen
                    results[model][name] = {
                        c: run_wrk(
                            target, body, connections=c, duration_s=DURATION_S, headers=headers
                        )
                        for c in CONCURRENCY
                    }
                    print(
                        model,
                        name,
                        {
                            c: (round(r.rps), r.p50_ms, r.p99_ms, r.errors)
                            for c, r in results[model][name].items()
                        },
                        flush=True,
                    )
    finally:
        serve.shutdown()
    sections = [f"Model: {label}.\n\n" + _table(results[model]) for model, label in MODELS.items()]
    ingress = (
        "HAProxy ingress + throughput-optimized"
        if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1"
        else "default proxy"
    )
    text = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on this machine ({os.cpu_count()} cores, "
        f"shared with other work: load average {os.getloadavg()[0]:.1f}), "
        f"Serve ingress: {ingress}. "
        "Models on the built-in server, JSON v2 request of one row; wrk, 1 thread, "
        f"{DURATION_S} s per cell after a 2 s warm-up. The gateway checks an API key and matches "
        "the route, then reaches the model either over keep-alive HTTP (aiohttp) back through "
        "the ingress or with a DeploymentHandle call into the model's replica "
        "(`TritonModelServer.handle_raw`, the same dispatch as HTTP). (b) is the default, "
        f"`builtin_handles: auto` (`X-MLServe-Upstream: {via.get('(b)', '?')}`); (c) forces "
        f"handles (`X-MLServe-Upstream: {via.get('(c)', '?')}`).\n\n" + "\n\n".join(sections) + "\n"
    )
    print(text)
    write_section(ROOT / "docs" / "benchmarks.md", "Gateway", text)


def _gateway_args(data_dir: Path) -> dict[str, object]:
    """The recorded args of the gateway app (``p-gw-apps``)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{data_dir / 'platform.db'}")
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT args FROM serve_apps WHERE name = 'p-gw-apps'")).scalar()
    engine.dispose()
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def _redeploy_gateway(args: dict[str, object]) -> None:
    from ray import serve

    from deployments.gateway import build_gateway

    serve.run(build_gateway(args), name="p-gw-apps", route_prefix="/apps")


def _table(results: dict[str, dict[int, LoadResult]]) -> str:
    (_direct_name, direct), *gated_rows = list(results.items())
    rows = []
    for name, res in results.items():
        cells = [name]
        for c in CONCURRENCY:
            r = res[c]
            cells.append(
                f"{r.rps:,.0f} rps; p50 {r.p50_ms:.2f} / p99 {r.p99_ms:.1f} ms"
                + (f"; {r.errors} errors" if r.errors else "")
            )
        rows.append(cells)
    for name, gated in gated_rows:
        ratio = [f"{name[:3]} / direct"]
        for c in CONCURRENCY:
            rps_ratio = gated[c].rps / direct[c].rps if direct[c].rps else 0
            added = (gated[c].p50_ms / direct[c].p50_ms - 1) * 100 if direct[c].p50_ms else 0
            extra = gated[c].p50_ms - direct[c].p50_ms
            ratio.append(f"throughput {rps_ratio:.2f}x; p50 {extra:+.2f} ms ({added:+.0f}%)")
        rows.append(ratio)
    return table(rows, ["target", *[f"c={c}" for c in CONCURRENCY]])


if __name__ == "__main__":
    main()
