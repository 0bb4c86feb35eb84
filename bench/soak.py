"""Soak: mixed traffic at 80% of a measured peak for minutes, watching errors, latency and memory.

The platform runs as ``make run`` sets it up (the control-plane application on a fresh local Ray
cluster, HAProxy ingress with throughput-optimized handles, SQLite), started in-process like the
other bench modules. Four classes of traffic run
at once:

* ``v2 infer``: ``POST /v2/models/add_sub/infer`` (python backend);
* ``wfpredict``: ``POST /wfpredict/pipeline`` (pre -> TorchScript -> post, fused);
* ``torc``: ``claim_next_jobs`` (1 job) + ``complete_job``, as a torc runner does; new workflows
  of independent jobs are created and initialized as the pool runs low (not timed);
* ``management``: reads of ``/models``, ``/workflows``, ``/v2/repository/index``,
  ``/torc-service/v1/workflows`` and ``/api/models`` in turn.

First each class runs closed-loop (4 clients each, all classes together) for ``--peak-s`` to
measure the mix's sustained peak (60 s: long enough to include the torc pool's refills; a 20 s
window measured a burst the platform could not hold). Then each class is driven open-loop at 80%
of its peak rate for ``--minutes``, refusing beyond 64 requests in flight. Reported per
minute: requests, errors, p50/p99 per class; and the RSS of every platform process (Ray's
processes and replicas) before any load, when the soak starts (after the peak phase warmed the
pools, caches and allocator arenas) and at its end: a leak shows as growth over the soak.
Not part of ``make test``. Run: ``python -m bench.soak --minutes 10`` (or
``make bench BENCH_ARGS=soak``); ``--no-write`` leaves docs/benchmarks.md alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.loadgen import table, write_section

ROOT = Path(__file__).resolve().parent.parent
T = "/torc-service/v1"
AUTH = {"authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
PEAK_CLIENTS = 4
LOAD_SHARE = 0.8
# Per class, beyond this many requests in flight the open loop counts a request as refused. A
# cap of 5 s of each class's rate (tried at 21:38 on 2026-12-01) let thousands of requests and
# their new connections pile up when the platform fell behind, and the whole platform collapsed
# into 6-11 s latencies from minute 2: a small cap keeps the backlog, and the soak, meaningful.
MAX_IN_FLIGHT = 64
POOL_JOBS = 2000
INFER_BODY = json.dumps(
    {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [4, 3, 2, 1]},
        ]
    }
)
WF_BODY = '{"input": [1.0, 2.0, 3.0, 4.0]}'
MANAGEMENT_READS = [
    ("GET", "/models"),
    ("GET", "/workflows"),
    ("POST", "/v2/repository/index"),
    ("GET", f"{T}/workflows"),
    ("GET", "/api/models"),
]
CLASSES = ("v2 infer", "wfpredict", "torc", "management")


@dataclass
class Sample:
    """One timed operation."""

    klass: str
    started: float
    latency_ms: float
    ok: bool


@dataclass
class Recorder:
    """Every sample, and per class how often each error text (cut to 200 chars) occurred."""

    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    most_in_flight: Counter[str] = field(default_factory=Counter)

    def add(self, klass: str, started: float, ok: bool, error: str = "") -> None:
        self.samples.append(Sample(klass, started, (time.perf_counter() - started) * 1000, ok))
        if not ok:
            self.errors[klass][error[:200]] += 1


class TorcPool:
    """Ready jobs for the torc class: a workflow of independent jobs, replaced when it runs low."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.workflow = 0
        self.node = 0
        self.remaining = 0
        self._refill: asyncio.Task[None] | None = None

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.url + T + path, json=body) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {(await resp.text())[:200]}")
            return await resp.json()

    async def refill(self) -> None:
        """A new workflow of POOL_JOBS ready jobs (and a compute node to complete them on)."""
        wf = (await self._json("POST", "/workflows", {"name": "soak", "user": "soak"}))["id"]
        jobs = [{"workflow_id": wf, "name": f"j{i}", "command": "true"} for i in range(POOL_JOBS)]
        await self._json("POST", "/bulk_jobs", {"jobs": jobs})
        await self._json("POST", f"/workflows/{wf}/initialize_jobs", {})
        node = await self._json("POST", "/compute_nodes", {"workflow_id": wf, "hostname": "soak"})
        self.workflow, self.node, self.remaining = wf, node["id"], POOL_JOBS

    def _maybe_refill(self) -> None:
        if self.remaining < POOL_JOBS // 4 and (self._refill is None or self._refill.done()):
            self._refill = asyncio.create_task(self.refill())

    async def one(self, recorder: Recorder) -> None:
        """Claim one job and complete it: one timed operation."""
        self._maybe_refill()
        wf, node = self.workflow, self.node
        started = time.perf_counter()
        try:
            async with self.session.post(
                f"{self.url}{T}/workflows/{wf}/claim_next_jobs", params={"limit": "1"}, json={}
            ) as resp:
                if resp.status != 200:
                    recorder.add("torc", started, False, f"claim {resp.status} {await resp.text()}")
                    return
                jobs = (await resp.json())["jobs"]
            if not jobs:  # the pool ran dry before the refill landed: not a platform error
                return
            self.remaining -= 1
            result = {"return_code": 0, "compute_node_id": node, "exec_time_minutes": 0.0}
            async with self.session.post(
                f"{self.url}{T}/jobs/{jobs[0]['id']}/complete_job/completed/0", json=result
            ) as resp:
                ok = resp.status == 200
                recorder.add("torc", started, ok, "" if ok else f"complete {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            recorder.add("torc", started, False, repr(exc))


def _operations(
    session: aiohttp.ClientSession, url: str, pool: TorcPool, recorder: Recorder
) -> dict[str, Callable[[], Awaitable[None]]]:
    reads = itertools.cycle(MANAGEMENT_READS)
    json_headers = {**AUTH, "content-type": "application/json"}

    async def http(klass: str, method: str, path: str, body: str | None = None) -> None:
        started = time.perf_counter()
        try:
            async with session.request(
                method, url + path, data=body, headers=json_headers if body else AUTH
            ) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
                recorder.add(klass, started, ok, "" if ok else f"{path} {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            recorder.add(klass, started, False, f"{path} {exc!r}")

    async def management() -> None:
        method, path = next(reads)
        await http("management", method, path)

    return {
        "v2 infer": lambda: http("v2 infer", "POST", "/v2/models/add_sub/infer", INFER_BODY),
        "wfpredict": lambda: http("wfpredict", "POST", "/wfpredict/pipeline", WF_BODY),
        "torc": lambda: pool.one(recorder),
        "management": management,
    }


async def _closed_loop(ops: dict[str, Callable[[], Awaitable[None]]], seconds: float) -> None:
    deadline = time.perf_counter() + seconds

    async def client(op: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < deadline:
            await op()

    await asyncio.gather(*(client(op) for op in ops.values() for _ in range(PEAK_CLIENTS)))


async def _open_loop(
    ops: dict[str, Callable[[], Awaitable[None]]],
    rates: dict[str, float],
    seconds: float,
    recorder: Recorder,
) -> None:
    """Start each class's operations at its rate, whatever the answers' latency."""
    deadline = time.perf_counter() + seconds

    async def pace(klass: str, op: Callable[[], Awaitable[None]]) -> None:
        interval = 1.0 / rates[klass]
        in_flight: set[asyncio.Task[None]] = set()
        next_at = time.perf_counter()
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += interval
            recorder.most_in_flight[klass] = max(recorder.most_in_flight[klass], len(in_flight))
            if len(in_flight) >= MAX_IN_FLIGHT:
                recorder.add(klass, time.perf_counter(), False, "refused: too many in flight")
                continue
            task = asyncio.create_task(op())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)

    await asyncio.gather(*(pace(k, op) for k, op in ops.items()))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def platform_processes() -> dict[int, str]:
    """Every process of the platform: the Ray processes this driver started, replicas included.

    ``ray.init(address="local")`` makes the GCS, raylet, workers and replicas descendants of
    this process; the driver itself (the load generator) is left out.
    """
    labels = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            labels[proc.pid] = proc.name()
        except psutil.Error:
            continue
    return labels


@contextlib.contextmanager
def running_platform(data_dir: Path) -> Iterator[str]:
    """The platform on a fresh local Ray cluster, as ``make run`` sets it up; yields its URL.

    Started in-process like the other bench modules (``bench.v2_bench``): a one-node
    ``ray start`` waits 120 s at most for its raylet, which a loaded 2-core machine misses.
    """
    from tests.conftest import _start_serve, free_port, ray_test_env

    os.environ.update(ray_test_env(fast_ingress=True))
    import ray
    from ray import serve

    from entrypoint.control_plane_app import build_control_plane

    attempts = 8
    for attempt in range(attempts):
        try:
            ray.init(
                address="local",
                num_cpus=4,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=tempfile.mkdtemp(prefix="ray-soak-"),
            )
            break
        except Exception as exc:  # Ray waits 30 s (fixed) for its raylet: a busy machine misses it
            print(f"ray.init attempt {attempt + 1} of {attempts} failed: {exc}", flush=True)
            ray.shutdown()
            if attempt == attempts - 1:
                raise
    try:
        # serve.start retried: a busy machine's Serve controller may kill the ingress starting.
        port = _start_serve(serve, free_port(), attempts=4)
        url = f"http://127.0.0.1:{port}"
        args = {"data_dir": str(data_dir), "public_url": url}
        serve.run(build_control_plane(args), name="control-plane", route_prefix="/")
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()


def rss_mib(pids: dict[int, str]) -> dict[int, float]:
    """Resident memory of each live pid, in MiB."""
    out = {}
    for pid in pids:
        try:
            out[pid] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            continue
    return out


def _setup(work: Path) -> None:
    """The add_sub repository model and the pipeline workflow's archives, in the store."""
    sys.path.insert(0, str(ROOT))
    from bench.torchserve_bench import build_archives

    store = work / "var" / "store"  # the platform's data_dir is work/var
    shutil.copytree(ROOT / "configs" / "models" / "add_sub", store / "models" / "add_sub")
    archives = build_archives(work / "archives")
    for kind in ("model-store", "wf-store"):
        (store / kind).mkdir(parents=True, exist_ok=True)
        for archive in archives.iterdir():
            shutil.copy(archive, store / kind / archive.name)


def _register(url: str) -> None:
    import httpx

    for path, params in (
        ("/v2/repository/models/add_sub/load", None),
        ("/workflows", {"url": "pipeline.war", "workflow_name": "pipeline", "execution": "fused"}),
    ):
        resp = httpx.post(url + path, params=params, timeout=300)
        if resp.status_code != 200:
            raise RuntimeError(f"{path}: {resp.status_code} {resp.text}")
    for path, body in (("/v2/models/add_sub/infer", INFER_BODY), ("/wfpredict/pipeline", WF_BODY)):
        deadline = time.monotonic() + 120
        while True:
            resp = httpx.post(
                url + path, content=body, headers={"content-type": "application/json"}, timeout=30
            )
            if resp.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path} never answered 200: {resp.status_code} {resp.text}")
            time.sleep(1)


async def _drive(
    url: str, peak_s: float, minutes: float, at_soak_start: Callable[[], None]
) -> tuple[dict[str, float], Recorder]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        pool = TorcPool(session, url)
        await pool.refill()
        peak = Recorder()
        await _closed_loop(_operations(session, url, pool, peak), peak_s)
        rates = {
            k: max(sum(1 for s in peak.samples if s.klass == k) / peak_s * LOAD_SHARE, 0.5)
            for k in CLASSES
        }
        print("peak rates (ops/s):", {k: round(v / LOAD_SHARE, 1) for k, v in rates.items()})
        at_soak_start()  # after the peak phase: pools, caches and arenas have seen load
        soak = Recorder()
        await _open_loop(_operations(session, url, pool, soak), rates, minutes * 60, soak)
    return rates, soak


def render(
    rates: dict[str, float],
    soak: Recorder,
    rss_before: dict[int, float],
    rss_start: dict[int, float],
    rss_end: dict[int, float],
    labels: dict[int, str],
    minutes: float,
    load: str,
) -> str:
    """The Markdown of the soak section."""
    t0 = min((s.started for s in soak.samples), default=0.0)
    by_minute: dict[tuple[int, str], list[Sample]] = defaultdict(list)
    for s in soak.samples:
        by_minute[(int((s.started - t0) // 60), s.klass)].append(s)
    rows = []
    for minute in sorted({m for m, _ in by_minute}):
        row = [str(minute + 1)]
        for klass in CLASSES:
            got = by_minute.get((minute, klass), [])
            lat = [s.latency_ms for s in got if s.ok]
            errors = sum(1 for s in got if not s.ok)
            row.append(f"{len(got)} / {errors} / {_pct(lat, 0.5):.1f} / {_pct(lat, 0.99):.1f}")
        rows.append(row)
    per_minute = table(rows, ["minute", *[f"{k}: n / err / p50 / p99 ms" for k in CLASSES]])
    mem_rows = []
    for pid in sorted(rss_start, key=lambda p: -rss_start[p]):
        end = rss_end.get(pid)
        growth = f"{(end / rss_start[pid] - 1) * 100:+.1f}%" if end else "exited"
        end_text = f"{end:.0f}" if end else "-"
        before = f"{rss_before[pid]:.0f}" if pid in rss_before else "-"
        mem_rows.append(
            [labels.get(pid, "?"), str(pid), before, f"{rss_start[pid]:.0f}", end_text, growth]
        )
    total_before = sum(rss_before.get(p, 0.0) for p in rss_start)
    total_start = sum(rss_start.values())
    total_end = sum(rss_end.get(p, 0.0) for p in rss_start)
    new = {p: v for p, v in rss_end.items() if p not in rss_start}
    mem_rows.append(
        ["all (same pids)", "", f"{total_before:.0f}", f"{total_start:.0f}", f"{total_end:.0f}",
         f"{(total_end / total_start - 1) * 100:+.1f}%"]
    )
    if new:
        mem_rows.append([f"{len(new)} processes started during the soak", "", "-", "-",
                         f"{sum(new.values()):.0f}", ""])
    memory = table(
        mem_rows,
        ["process", "pid", "RSS before any load MiB", "RSS soak start MiB", "RSS end MiB",
         "growth (soak start to end)"],
    )
    errors = sum(1 for s in soak.samples if not s.ok)
    texts = "; ".join(
        f"{k}: " + ", ".join(f"{n} x {text!r}" for text, n in kinds.most_common(5))
        for k, kinds in soak.errors.items()
    )
    rate_text = ", ".join(f"{k} {v:.1f}/s" for k, v in rates.items())
    in_flight = ", ".join(f"{k} {soak.most_in_flight[k]}" for k in CLASSES)
    shortened = (
        f" **Shortened run** ({minutes:g} min instead of 10) on a loaded shared machine: the "
        "numbers show the method, not a verdict."
        if minutes < 10
        else ""
    )
    return "\n\n".join(
        [
            f"`python -m bench.soak --minutes {minutes:g}`: {len(soak.samples)} operations, "
            f"**{errors} errors**{' (' + texts + ')' if texts else ''}. Open-loop rates "
            f"(80% of the closed-loop peak of the mix, measured in the same run): {rate_text}; "
            f"most requests in flight at once: {in_flight} (a class refuses beyond "
            f"{MAX_IN_FLIGHT} in flight). Load during the run: `{load}`.{shortened}",
            per_minute,
            "RSS of every platform process (Ray's processes and replicas), before any load, at "
            "the start of the soak (after the peak phase has warmed pools, caches and "
            "allocator arenas) and at its end; growth is measured over the soak:",
            memory,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Start the platform, measure the peak, soak at 80% of it, print and record the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="Soak length (10).")
    parser.add_argument("--peak-s", type=float, default=60.0, help="Peak measurement (60 s).")
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md alone.")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        _setup(work)
        with running_platform(work / "var") as url:
            _register(url)
            labels = platform_processes()
            rss_before = rss_mib(labels)
            rss_start: dict[int, float] = {}

            def at_soak_start() -> None:
                labels.update(platform_processes())
                rss_start.update(rss_mib(labels))

            rates, soak = asyncio.run(_drive(url, args.peak_s, args.minutes, at_soak_start))
            labels.update(platform_processes())
            rss_end = rss_mib(labels)
            load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    markdown = render(rates, soak, rss_before, rss_start, rss_end, labels, args.minutes, load)
    print(markdown)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Soak", markdown)
    latencies = [s.latency_ms for s in soak.samples if s.ok]
    print(f"overall p50 {statistics.median(latencies) if latencies else float('nan'):.1f} ms")
    return 1 if any(not s.ok for s in soak.samples) else 0


if __name__ == "__main__":
    sys.exit(main())
