"""The Grafana dashboard's GPU panels have data: Ray exports the series, Prometheus stores them."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT
from tests.gpu.helpers import (
    infer,
    load,
    prom_query,
    prometheus_binary,
    ray_metrics_port,
    running_prometheus,
    unload,
    wait_for,
)
from tests.model_repos import write_torch_probe

pytestmark = pytest.mark.ray
DASHBOARD = ROOT / "configs" / "grafana" / "platform-dashboard.json"
MODEL = "metrics_gpu"


def gpu_panel_queries() -> dict[str, list[str]]:
    """Title -> PromQL of every dashboard panel about GPUs."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in panels if "GPU" in p["title"]}


def test_dashboard_has_gpu_panels():
    assert gpu_panel_queries(), "the dashboard has no GPU panel"


@pytest.fixture(scope="module", name="busy_gpu_model")
def busy_gpu_model_fixture(platform, gpu_repo, cluster_gpus, gpu_report):
    """A GPU model with some traffic, so the node's GPU has a replica on it."""
    write_torch_probe(gpu_repo, MODEL, gpu_report.directory, kind="KIND_GPU",
                      ray_num_gpus="0.5")
    resp = load(platform, MODEL)
    assert resp.status_code == 200, resp.text
    for _ in range(20):
        infer(platform, MODEL, {"X": np.ones((64, 4), dtype=np.float32)})
    yield MODEL
    unload(platform, MODEL)


def _ray_gpu_samples() -> list[str]:
    text = httpx.get(f"http://127.0.0.1:{ray_metrics_port()}/metrics", timeout=10).text
    return [ln for ln in text.splitlines() if ln.startswith("ray_node_gpus_utilization{")]


def test_ray_exports_the_gpu_series_the_dashboard_reads(busy_gpu_model, gpu_report):
    samples = wait_for(_ray_gpu_samples, 90, "ray_node_gpus_utilization on Ray's metrics port")
    gpu_report.record("metrics_ray_endpoint", samples=samples)
    value = float(samples[0].rsplit(" ", 1)[1])
    assert 0 <= value <= 100


def test_dashboard_gpu_panels_have_data_in_prometheus(platform, busy_gpu_model, gpu_report,
                                                      tmp_path):
    binary = prometheus_binary()
    if binary is None:
        pytest.skip("prometheus is not installed (PATH or PROMETHEUS_BIN; scripts/"
                    "gpu_wheelhouse.sh carries one for the offline GPU machine)")
    with running_prometheus(binary, platform, tmp_path / "prometheus") as prom:
        results = {}
        for title, exprs in gpu_panel_queries().items():
            for expr in exprs:
                results[f"{title}: {expr}"] = wait_for(
                    lambda e=expr: prom_query(prom, e), 120, f"data for panel {title!r}: {expr}"
                )
        healthy = wait_for(
            lambda: prom_query(
                prom, f'ray_serve_deployment_replica_healthy{{application="p-v2-{MODEL}"}}'
            ), 120, "the GPU model's replica in Prometheus",
        )
    gpu_report.record("metrics_prometheus", panels=results, replica_healthy=healthy)
    for key, series in results.items():
        for sample in series:
            assert 0 <= float(sample["value"][1]) <= 100, (key, sample)
