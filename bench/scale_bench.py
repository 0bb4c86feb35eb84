"""Scale-out benchmark on a simulated 2-node Ray cluster (two ``ray start`` nodes on this machine).

Two questions, each answered as a ratio measured in the same run:

1. **Model throughput, 1 vs 2 replicas.** The same model is loaded with ``instance_group``
   count 1, measured, then reloaded with count 2 (Serve spreads the replicas over both nodes)
   and measured again. Two models: a CPU-bound python-backend model (~2 ms of pure-Python work
   per request, so one replica is held to one core by the GIL) and a tiny one (``Linear``-like
   add, bound by the ingress rather than the model).
2. **Control-plane CRUD latency, 1 vs 2 control-plane replicas.** ``serve run`` with
   ``num_replicas: 1``, then again with ``2``, on PostgreSQL: a create/get/update/delete cycle of
   Torc workflows from one client (p50/p99 per operation), and GET throughput at 16 connections.

Run: ``python -m bench.scale_bench`` (needs wrk and PostgreSQL on 127.0.0.1:5432).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.loadgen import LoadResult, require_wrk, run_wrk, table, write_section

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "8"))
CONCURRENCY = (8, 32)
CRUD_CYCLES = int(os.environ.get("BENCH_CRUD_CYCLES", "150"))
TORC = "/torc-service/v1"
# One replica per node: with 2 replicas, one on each node (Serve's own spread is best-effort).
PER_NODE = 'parameters { key: "ray_max_replicas_per_node" value: { string_value: "1" } }\n'

CPU_MODEL = '''
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.work = 20000

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
            acc = 0
            for i in range(self.work):  # pure-Python work: one replica uses one core at most
                acc = (acc + i * i) % 1000003
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("Y", (x + acc % 2).astype(np.float32)),
            ]))
        return responses
'''


def _config(name: str, count: int) -> str:
    return (
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 0\n'
        'input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        f"instance_group [ {{ kind: KIND_CPU count: {count} }} ]\n"
        f"{PER_NODE}"
    )


def _write_models(repo: Path) -> None:
    from tests.model_repos import write_add_sub

    model = repo / "cpu_bound"
    (model / "1").mkdir(parents=True, exist_ok=True)
    (model / "1" / "model.py").write_text(CPU_MODEL)
    (model / "config.pbtxt").write_text(_config("cpu_bound", 1))
    tiny = write_add_sub(repo, "tiny") / "config.pbtxt"
    tiny.write_text(tiny.read_text().replace('"add_sub"', '"tiny"') + PER_NODE)


def _body(model: str) -> bytes:
    if model == "tiny":
        row = [1.0, 2.0, 3.0, 4.0]
        inputs = [
            {"name": n, "shape": [1, 4], "datatype": "FP32", "data": row}
            for n in ("INPUT0", "INPUT1")
        ]
    else:
        inputs = [{"name": "X", "shape": [4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]
    return json.dumps({"inputs": inputs}).encode()


def _load(api: httpx.Client, repo: Path, model: str, count: int) -> None:
    """Set the model's instance count in its config.pbtxt and (re)load it, as an operator does."""
    config = repo / model / "config.pbtxt"
    text = re.sub(r"count: \d+", f"count: {count}", config.read_text())
    config.write_text(text)
    resp = api.post(f"/v2/repository/models/{model}/load", json={})
    resp.raise_for_status()


def _crud(api: httpx.Client) -> dict[str, list[float]]:
    """Create/get/update/delete a Torc workflow ``CRUD_CYCLES`` times; ms per operation."""
    times: dict[str, list[float]] = {"create": [], "get": [], "update": [], "delete": []}
    for i in range(CRUD_CYCLES):
        started = time.perf_counter()
        resp = api.post(TORC + "/workflows", json={"name": f"crud{i}", "user": "bench"})
        times["create"].append((time.perf_counter() - started) * 1000)
        wf = resp.json()["id"]
        started = time.perf_counter()
        api.get(f"{TORC}/workflows/{wf}").raise_for_status()
        times["get"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        api.put(f"{TORC}/workflows/{wf}", json={"description": "x"}).raise_for_status()
        times["update"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        api.delete(f"{TORC}/workflows/{wf}").raise_for_status()
        times["delete"].append((time.perf_counter() - started) * 1000)
    return times


def _measure_control_plane(url: str) -> tuple[dict[str, list[float]], LoadResult]:
    """Sequential CRUD latencies, then GET-list throughput at 16 connections."""
    with httpx.Client(base_url=url, timeout=300) as api:
        times = _crud(api)
    listing = run_wrk(
        f"{url}{TORC}/workflows?limit=10", b"", connections=16, duration_s=DURATION_S,
        method="GET",
    )
    return times, listing


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Platform:
    """A 2-node cluster plus ``serve run`` with ``cp_replicas`` control-plane replicas."""

    def __init__(self, work: Path, pg_url: str, store: Path, cp_replicas: int) -> None:
        from tests.cluster.local_cluster import LocalCluster
        from tests.conftest import free_port, ray_test_env
        from tests.serve_run import start_serve_run, wait_http_ok

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
        config["http_options"]["port"] = self.port
        config["applications"][0]["args"].update(
            {
                "data_dir": str(work / "var"),
                "num_replicas": cp_replicas,
                "public_url": self.url,
                "db": {"url": pg_url},
                "store": {"root": str(store)},
            }
        )
        path = work / f"serve_config_{cp_replicas}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**os.environ, **ray_test_env(fast_ingress=True)}
        env.pop("RAY_ADDRESS", None)
        self.cluster = LocalCluster(work, env)
        self.cluster.start()
        log = work / "serve.log"
        self.proc = start_serve_run(path, {**env, "RAY_ADDRESS": self.cluster.address}, log)
        wait_http_ok(self.url + "/v2/health/ready", self.proc, log, timeout_s=240)

    def stop(self) -> None:
        """Stop serve run and every node."""
        from tests.serve_run import stop_serve_run

        stop_serve_run(self.proc)
        self.cluster.stop()


def _row(label: str, result: LoadResult) -> list[str]:
    return [label, f"{result.rps:,.0f}", f"{result.p50_ms:.2f}", f"{result.p99_ms:.1f}",
            str(result.errors)]


def main() -> None:
    """Run both measurements and print (and record) the ratio tables."""
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database

    require_wrk()
    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    store = work / "store"
    _write_models(store / "models")
    pg_url = create_pg_database(PG_ADMIN_URL)
    load_before = os.getloadavg()[0]
    model_rows: list[list[str]] = []
    ratio_rows: list[list[str]] = []
    crud: dict[int, dict[str, list[float]]] = {}
    crud_get: dict[int, LoadResult] = {}
    try:
        platform = Platform(work, pg_url, store, cp_replicas=2)
        try:
            api = httpx.Client(base_url=platform.url, timeout=300)
            for model in ("cpu_bound", "tiny"):
                results: dict[int, dict[int, LoadResult]] = {}
                for count in (1, 2):
                    _load(api, store / "models", model, count)
                    nodes = platform.cluster.replicas(f"p-v2-{model}").get("TritonModel", [])
                    url = f"{platform.url}/v2/models/{model}/infer"
                    results[count] = {}
                    for c in CONCURRENCY:
                        res = run_wrk(url, _body(model), connections=c, duration_s=DURATION_S)
                        results[count][c] = res
                        model_rows.append(
                            _row(f"{model}, {count} replica(s) on {'+'.join(nodes)}, c={c}", res)
                        )
                        print(model_rows[-1], flush=True)
                for c in CONCURRENCY:
                    one, two = results[1][c], results[2][c]
                    ratio_rows.append(
                        [model, str(c), f"{two.rps / one.rps:.2f}x",
                         f"{two.p50_ms - one.p50_ms:+.2f} ms"]
                    )
            api.close()
            crud[2], crud_get[2] = _measure_control_plane(platform.url)
        finally:
            platform.stop()
        platform = Platform(work, pg_url, store, cp_replicas=1)
        try:
            crud[1], crud_get[1] = _measure_control_plane(platform.url)
        finally:
            platform.stop()
    finally:
        drop_pg_database(PG_ADMIN_URL, pg_url)
    load_after = os.getloadavg()[0]

    crud_rows = []
    for op in ("create", "get", "update", "delete"):
        one, two = crud[1][op], crud[2][op]
        crud_rows.append(
            [op, f"{statistics.median(one):.2f} / {_pct(one, 0.99):.1f}",
             f"{statistics.median(two):.2f} / {_pct(two, 0.99):.1f}",
             f"{statistics.median(two) / statistics.median(one):.2f}x"]
        )
    crud_rows.append(
        [f"GET list, wrk c=16 (req/s; non-2xx {crud_get[1].errors} / {crud_get[2].errors})",
         f"{crud_get[1].rps:,.0f}", f"{crud_get[2].rps:,.0f}",
         f"{crud_get[2].rps / crud_get[1].rps:.2f}x"]
    )
    text = "\n\n".join(
        [
            f"`python -m bench.scale_bench` — {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{os.cpu_count()} cores, load average {load_before:.1f} before / "
            f"{load_after:.1f} after. Two Ray nodes on this machine (`ray start --head` + "
            "`ray start --address`, 2 logical CPUs each), PostgreSQL, HAProxy ingress; wrk "
            f"1 thread, {DURATION_S} s per point after a 2 s warm-up. Both nodes share the same "
            "2 physical cores, so this shows placement and overhead, not the speed-up of two "
            "machines.",
            "Model throughput: the same model with `instance_group` count 1, then 2.",
            table(model_rows, ["target", "req/s", "p50 ms", "p99 ms", "errors"]),
            table(ratio_rows, ["model", "c", "req/s 2 vs 1 replica", "p50 change"]),
            f"Control-plane CRUD (Torc workflows, {CRUD_CYCLES} sequential cycles from one "
            "client; p50 / p99 ms) with 1 vs 2 control-plane replicas:",
            table(crud_rows, ["operation", "1 replica", "2 replicas", "2 vs 1"]),
        ]
    )
    print(text)
    write_section(ROOT / "docs" / "benchmarks.md", "Scale-out", text)


if __name__ == "__main__":
    main()
