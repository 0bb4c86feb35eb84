"""What the GPU tier's tests share: v2 calls, Serve replica counts, a load generator, Prometheus."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import yaml

from tests.conftest import ROOT, PlatformHandle, free_port

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout_s: float, what: str, period_s: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and its last value."""
    deadline = time.monotonic() + timeout_s
    value: T = probe()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s:g}s (last: {value!r})")
        time.sleep(period_s)
        value = probe()
    return value


def infer(platform: PlatformHandle, model: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """One v2 JSON inference; returns ``{output name: array}`` (raises on non-200)."""
    body = {
        "inputs": [
            {"name": n, "shape": list(a.shape), "datatype": "FP32", "data": a.flatten().tolist()}
            for n, a in inputs.items()
        ]
    }
    resp = httpx.post(f"{platform.url}/v2/models/{model}/infer", json=body, timeout=60)
    assert resp.status_code == 200, (model, resp.status_code, resp.text)
    return {
        o["name"]: np.asarray(o["data"], dtype=np.float32).reshape(o["shape"])
        for o in resp.json()["outputs"]
    }


def load(platform: PlatformHandle, model: str, timeout_s: float = 240) -> httpx.Response:
    """``POST /v2/repository/models/<m>/load`` (synchronous, like Triton's)."""
    return httpx.post(f"{platform.url}/v2/repository/models/{model}/load", json={},
                      timeout=timeout_s)


def unload(platform: PlatformHandle, *models: str) -> None:
    """Unload, ignoring errors (used in ``finally`` blocks)."""
    for model in models:
        with suppress(httpx.HTTPError):
            httpx.post(f"{platform.url}/v2/repository/models/{model}/unload", json={}, timeout=120)


def index_entry(platform: PlatformHandle, model: str) -> dict[str, Any]:
    """The model's entry in ``POST /v2/repository/index`` (empty dict if absent)."""
    entries = httpx.post(f"{platform.url}/v2/repository/index", json={}, timeout=30).json()
    return next((e for e in entries if e["name"] == model), {})


def serve_deployment(platform: PlatformHandle, model: str) -> dict[str, Any]:
    """The model's deployment in ``GET /status``: ``{"status", "message", "replicas"}``."""
    apps = httpx.get(f"{platform.url}/status", timeout=30).json()["applications"]
    app = next((a for a in apps if a["name"] == f"p-v2-{model}"), None)
    if app is None or not app["deployments"]:
        return {"status": "MISSING", "message": "", "replicas": {}}
    return next(iter(app["deployments"].values()))


def running_replicas(platform: PlatformHandle, model: str) -> int:
    """Replicas of the model's deployment that Serve reports RUNNING."""
    return int(serve_deployment(platform, model)["replicas"].get("RUNNING", 0))


def gpus_available() -> float:
    """Unclaimed GPU share of the cluster, as Ray's scheduler sees it."""
    import ray

    return float(ray.available_resources().get("GPU", 0.0))


class BackgroundLoad:
    """A load call in a thread: the call blocks while the model waits for a GPU."""

    def __init__(self, platform: PlatformHandle, model: str, timeout_s: float = 300) -> None:
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(platform, model, timeout_s),
                                        daemon=True)
        self._thread.start()

    def _run(self, platform: PlatformHandle, model: str, timeout_s: float) -> None:
        try:
            self.response = load(platform, model, timeout_s)
        except Exception as exc:
            self.error = exc

    @property
    def waiting(self) -> bool:
        """True while the load call has not returned."""
        return self._thread.is_alive()

    def result(self, timeout_s: float) -> httpx.Response:
        """The load call's response, once it returns."""
        self._thread.join(timeout_s)
        if self.error is not None:
            raise self.error
        assert self.response is not None, f"load still waiting after {timeout_s:g}s"
        return self.response


class LoadGenerator:
    """``concurrency`` threads sending v2 inferences to one model in a loop until stopped."""

    def __init__(self, platform: PlatformHandle, model: str, inputs: dict[str, np.ndarray],
                 concurrency: int) -> None:
        self.url = f"{platform.url}/v2/models/{model}/infer"
        self.body = {
            "inputs": [
                {"name": n, "shape": list(a.shape), "datatype": "FP32",
                 "data": a.flatten().tolist()}
                for n, a in inputs.items()
            ]
        }
        self.ok = 0
        self.failed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(concurrency)]

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                try:
                    status = str(client.post(self.url, json=self.body).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                with self._lock:
                    if status == "200":
                        self.ok += 1
                    else:
                        self.failed[status] = self.failed.get(status, 0) + 1

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)


def prometheus_binary() -> str | None:
    """``$PROMETHEUS_BIN``, else ``prometheus`` on PATH."""
    configured = os.environ.get("PROMETHEUS_BIN")
    if configured and Path(configured).is_file():
        return configured
    return shutil.which("prometheus")


def ray_metrics_port() -> int:
    """The metrics export port of the session's Ray node (what Prometheus scrapes)."""
    import ray

    return int(ray._private.worker.global_worker.node.metrics_export_port)


@contextmanager
def running_prometheus(binary: str, platform: PlatformHandle, work: Path) -> Iterator[str]:
    """A real Prometheus with configs/prometheus.yml, pointed at this session's ports.

    The same adaptation as tests/compat/test_prometheus.py: 1 s scrapes, the platform's port,
    and Ray's metrics port instead of Ray's service-discovery file.
    """
    config = yaml.safe_load((ROOT / "configs" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    for job in config["scrape_configs"]:
        if job["job_name"] == "platform":
            job["static_configs"] = [{"targets": [platform.host_port]}]
        if job["job_name"] == "ray":
            job.pop("file_sd_configs")
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ray_metrics_port()}"]}]
    work.mkdir(parents=True, exist_ok=True)
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (work / "log").open("wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), 60, "prometheus /-/ready", period_s=0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def prom_query(prom: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    resp = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    resp.raise_for_status()
    return list(resp.json()["data"]["result"])
