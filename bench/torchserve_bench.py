"""TorchServe benchmark: this platform against real TorchServe 0.12.

The same 3-node workflow (pre -> TorchScript model -> post) and the same
model alone, on this platform (separate deployments and fused execution) and on REAL TorchServe
0.12, with equal worker counts (one worker per node, batch size 1).

Run: ``python -m bench.torchserve_bench`` (``--duration 8``, ``--no-write`` to leave
docs/benchmarks.md alone). Load comes from ``wrk`` (``apt-get install wrk``) at concurrency 1, 8
and 32; throughput and p50/p99 latency are printed with platform/TorchServe ratios and written to
the "TorchServe" section of docs/benchmarks.md. Both servers stay up and are measured
in rotation (median of interleaved passes) so drifting load on a shared machine hits them alike;
everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform as pyplatform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.torchserve_peer import TorchServePeer, free_port, torchserve_available

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = (1, 8, 32)
PAYLOAD = '{"input": [1.0, 2.0, 3.0, 4.0]}'
SPEC = """
models:
  min-workers: 1
  max-workers: 1
  batch-size: 1
  max-batch-delay: 5
  retry-attempts: 1
  timeout-ms: 10000
  tiny:
    url: tiny.mar
dag:
  pre: [tiny]
  tiny: [post]
"""


@dataclass
class Result:
    """One wrk run."""

    server: str
    target: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def build_archives(root: Path) -> Path:
    """tiny.mar (TorchScript via ts BaseHandler) and pipeline.war, made by the real archivers."""
    sys.path.insert(0, str(ROOT))
    from tests.integration.torchserve.builders import (
        PIPELINE_FUNCTIONS,
        TORCHSCRIPT_HANDLER,
        make_mar,
        make_torchscript,
        make_war,
    )

    store = root / "store"
    weights = make_torchscript(root / "src" / "tiny.pt")
    make_mar(store, "tiny", TORCHSCRIPT_HANDLER, serialized=weights, work=root / "src" / "m")
    make_war(store, "pipeline", SPEC, PIPELINE_FUNCTIONS, work=root / "src" / "w")
    return store


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str, concurrency: int, duration_s: int, workdir: Path
) -> tuple[float, float, float, int]:
    """POST the payload with wrk; returns (requests/s, p50 ms, p99 ms, non-2xx + socket errors)."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{PAYLOAD}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    threads = 1 if concurrency == 1 else 2
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return rps, p50, p99, errors


def check(server: str, target: str, url: str, workdir: Path) -> None:
    """One request must succeed; then a short warm-up."""
    resp = httpx.post(
        url, content=PAYLOAD, headers={"content-type": "application/json"}, timeout=60
    )
    if resp.status_code != 200:
        raise RuntimeError(f"{server} {target}: {resp.status_code} {resp.text}")
    run_wrk(url, 8, 2, workdir)


def measure(
    targets: list[tuple[str, str, str]], duration_s: int, rounds: int, workdir: Path
) -> list[Result]:
    """Interleave the servers and keep the median pass per target.

    For each concurrency, ``rounds`` passes over every target; keep the median pass per target
    (the machine is shared, so load drifts over minutes).
    """
    results = []
    for concurrency in CONCURRENCY:
        samples: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
        for _ in range(rounds):
            for server, target, url in targets:
                samples.setdefault((server, target), []).append(
                    run_wrk(url, concurrency, duration_s, workdir)
                )
        for (server, target), runs in samples.items():
            runs.sort(key=lambda r: r[0])
            rps, p50, p99, errors = runs[len(runs) // 2]
            results.append(Result(server, target, concurrency, rps, p50, p99, errors))
            print(
                f"  {server:<24} {target:<9} c={concurrency:<3} {rps:8.1f} req/s "
                f"p50 {p50:7.2f} ms p99 {p99:7.2f} ms errors {errors} "
                f"(passes: {', '.join(f'{r[0]:.0f}' for r in runs)})",
                flush=True,
            )
    return results


@contextlib.contextmanager
def torchserve_targets(store: Path, root: Path) -> Iterator[list[tuple[str, str, str]]]:
    """Real TorchServe 0.12: tiny model (1 worker) and the workflow (1 worker per node)."""
    with TorchServePeer(root / "torchserve", store) as peer:
        mgmt = peer.management_url
        resp = httpx.post(
            f"{mgmt}/models",
            params={"url": "tiny.mar", "initial_workers": 1, "batch_size": 1},
            timeout=300,
        )
        resp.raise_for_status()
        httpx.post(
            f"{mgmt}/workflows", params={"url": "pipeline.war"}, timeout=300
        ).raise_for_status()
        yield [
            ("TorchServe 0.12", "model", f"{peer.inference_url}/predictions/tiny"),
            ("TorchServe 0.12", "workflow", f"{peer.inference_url}/wfpredict/pipeline"),
        ]


def _ray_env() -> dict[str, str]:
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_SERVE_ENABLE_HA_PROXY": os.environ.get("RAY_SERVE_ENABLE_HA_PROXY", "1"),
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": os.environ.get("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1"),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0.5",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


@contextlib.contextmanager
def platform_targets(store: Path, root: Path) -> Iterator[list[tuple[str, str, str]]]:
    """This platform: the model app, the workflow fused and with separate deployments."""
    os.environ.update(_ray_env())
    import ray
    from ray import serve

    from entrypoint.control_plane_app import build_control_plane

    data_dir = root / "platform"
    for kind in ("model-store", "wf-store"):
        (data_dir / "store" / kind).mkdir(parents=True, exist_ok=True)
        for archive in store.iterdir():
            shutil.copy(archive, data_dir / "store" / kind / archive.name)
    ray.init(
        address="local",
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(Path(tempfile.mkdtemp(prefix="ray-tsb-"))),
    )
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        url = f"http://127.0.0.1:{port}"
        args = {"data_dir": str(data_dir), "public_url": url}
        serve.run(build_control_plane(args), name="control-plane", route_prefix="/")
        _wait(url + "/healthz")
        reqs = [
            ("/models", {"url": "tiny.mar", "initial_workers": 1, "batch_size": 1}),
            ("/workflows", {"url": "pipeline.war", "workflow_name": "fused", "execution": "fused"}),
            (
                "/workflows",
                {"url": "pipeline.war", "workflow_name": "separate", "execution": "separate"},
            ),
        ]
        for path, params in reqs:
            resp = httpx.post(url + path, params=params, timeout=300)
            if resp.status_code != 200:
                raise RuntimeError(f"register {params}: {resp.text}")
        yield [
            ("platform", "model", f"{url}/predictions/tiny"),
            ("platform (separate)", "workflow", f"{url}/wfpredict/separate"),
            ("platform (fused)", "workflow", f"{url}/wfpredict/fused"),
        ]
    finally:
        serve.shutdown()
        ray.shutdown()


def _wait(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready")


def _find(results: list[Result], server: str, target: str, c: int) -> Result | None:
    return next(
        (r for r in results if r.server == server and r.target == target and r.concurrency == c),
        None,
    )


START_LOAD = os.getloadavg()[0]


def _ratio(results: list[Result], a: tuple[str, str], b: tuple[str, str], c: int) -> float | None:
    x, y = _find(results, *a, c), _find(results, *b, c)
    return x.rps / y.rps if x and y and y.rps else None


def targets_met(results: list[Result]) -> list[str]:
    """Issue 18's TorchServe targets, each with the measured ratio and met / not met."""
    ts_model, ts_wf = ("TorchServe 0.12", "model"), ("TorchServe 0.12", "workflow")
    checks: list[tuple[str, float | None, float]] = [
        ("model vs TorchServe, c=32", _ratio(results, ("platform", "model"), ts_model, 32), 1.0)
    ]
    for c in CONCURRENCY:
        for mode in ("separate", "fused"):
            ratio = _ratio(results, (f"platform ({mode})", "workflow"), ts_wf, c)
            checks.append((f"workflow {mode} vs TorchServe, c={c}", ratio, 1.5))
    for c in (8, 32):
        ratio = _ratio(
            results, ("platform (fused)", "workflow"), ("platform (separate)", "workflow"), c
        )
        checks.append((f"fused vs separate, c={c}", ratio, 1.2))
    lines = ["| target | measured | goal | met |", "|---|---|---|---|"]
    for name, ratio, goal in checks:
        shown = "—" if ratio is None else f"{ratio:.2f}x"
        met = "—" if ratio is None else ("yes" if ratio >= goal else "**no**")
        lines.append(f"| {name} | {shown} | >= {goal:g}x | {met} |")
    return lines


def render(results: list[Result], duration_s: int, rounds: int) -> str:
    """The markdown section (numbers plus ratios against TorchServe)."""
    lines = [
        "## TorchServe",
        "",
        f"`python -m bench.torchserve_bench` — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs "
        f"({pyplatform.machine()}), load average {os.getloadavg()[0]:.1f} at the end "
        "(shared machine). "
        f"wrk: {rounds} interleaved passes of {duration_s} s per point (both servers up, targets "
        "measured in rotation), median pass reported, after a warm-up; POST "
        f"`{PAYLOAD}`. Model: a TorchScript `Linear(4, 2)` served by a "
        "`ts.torch_handler.base_handler.BaseHandler` subclass from a `.mar`; workflow: "
        "`pre` (function) -> `tiny` (that model) -> "
        "`post` (function) from a `.war`. One worker per node on both servers, batch size 1. "
        "TorchServe 0.12.0 runs `--ncs --disable-token-auth` (Java 17, netty threads 32); the "
        "platform runs Ray Serve with the HAProxy ingress and `RAY_SERVE_THROUGHPUT_OPTIMIZED=1`.",
        "",
        "| target | server | c | req/s | p50 ms | p99 ms | errors | req/s vs TorchServe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = _find(results, "TorchServe 0.12", r.target, r.concurrency)
        ratio = f"{r.rps / base.rps:.2f}x" if base and base.rps and r.server != base.server else "—"
        lines.append(
            f"| {r.target} | {r.server} | {r.concurrency} | {r.rps:.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} | {ratio} |"
        )
    lines += ["", *targets_met(results), ""]
    lines += [
        "Notes: req/s counts every completed request in the pass; wrk's percentiles cover "
        "completed requests only. `fused` runs the whole chain in the driver replica in one "
        "worker-thread hop; `separate` adds a DeploymentHandle hop to the model deployment. "
        f"Load average at the start of the run: {START_LOAD:.1f}.",
    ]
    return "\n".join(lines) + "\n"


def write_docs(markdown: str, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Replace (or add) the ``## TorchServe`` section of docs/benchmarks.md."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find("\n## TorchServe")
    if start != -1:
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end:] if end != -1 else "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n\n" + markdown.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run both servers, print the table with ratios, record it in docs/benchmarks.md."""
    parser = argparse.ArgumentParser(prog="python -m bench.torchserve_bench")
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk pass")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes per point")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--skip-torchserve", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2
    reason = torchserve_available()
    if reason and not args.skip_torchserve:
        print(f"real TorchServe unavailable: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tsbench-") as tmp:
        root = Path(tmp)
        store = build_archives(root)
        with contextlib.ExitStack() as stack:
            targets = stack.enter_context(platform_targets(store, root))
            if not args.skip_torchserve:
                targets = stack.enter_context(torchserve_targets(store, root)) + targets
            for server, target, url in targets:
                check(server, target, url, root)
            results = measure(targets, args.duration, args.rounds, root)
    markdown = render(results, args.duration, args.rounds)
    print()
    print(markdown)
    if not args.no_write:
        write_docs(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
