"""A real Prometheus scrapes the running platform; Grafana only queries exported metrics.

Prometheus runs with configs/prometheus.yml, adapted to the test's ports; the Grafana dashboard
only queries metrics that are really exported.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import yaml

from tests.conftest import ROOT, free_port
from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar, make_war
from tests.model_repos import write_add_sub
from tests.serve.test_torchserve_models import wait_route

pytestmark = [pytest.mark.ray, pytest.mark.compat]

WF_SPEC = """
models:
  retry-attempts: 1
  timeout-ms: 5000
dag:
  pre: [post]
"""
WF_FUNCTIONS = """
def pre(data, context):
    if data is None:  # TorchServe calls function nodes once with None at start
        return None
    return [{"seen": True} for _ in data]


def post(data, context):
    if data is None:
        return None
    return [{"done": True} for _ in data]
"""
# A handler recording through context.metrics (TorchServe's custom metrics API).
METRICS_HANDLER = """
from ts.metrics.dimension import Dimension


def handle(data, context):
    if data is None:
        return None
    context.metrics.add_counter("EchoCalls", len(data), None, [Dimension("Route", "echo")])
    context.metrics.add_time("EchoTime", 1.5)
    return [row.get("body") for row in data]
"""
DASHBOARD = ROOT / "configs" / "grafana" / "platform-dashboard.json"
# Exported only where the hardware exists (Ray reports GPU series on GPU nodes).
HARDWARE_ONLY = {"ray_node_gpus_utilization"}
PROMQL_WORDS = {
    "sum", "by", "rate", "histogram_quantile", "avg", "le", "max", "min", "count", "without",
    "irate", "increase", "on", "ignoring", "and", "or", "unless", "offset",
}


def dashboard_metric_names() -> set[str]:
    """Metric names referenced by the dashboard's queries."""
    names = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\{[^}]*\}", "", target["expr"])  # drop label matchers
            expr = re.sub(r"\[[^\]]*\]", "", expr)  # and range selectors
            expr = re.sub(r"by \([^)]*\)", "", expr)  # and grouping labels
            for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
                if token not in PROMQL_WORDS:
                    names.add(token)
    return names


def test_dashboard_json_is_valid_grafana():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"]
    assert dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"]
        assert all(t["expr"] for t in panel["targets"])
        assert panel["datasource"]["type"] == "prometheus"


@pytest.fixture(scope="module", name="prometheus")
def prometheus_fixture(platform, tmp_path_factory):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; .ci/run does it)")
    import ray

    ray_port = ray._private.worker.global_worker.node.metrics_export_port
    config = yaml.safe_load((ROOT / "configs" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    for job in config["scrape_configs"]:
        if job["job_name"] == "platform":
            job["static_configs"] = [{"targets": [platform.host_port]}]
        if job["job_name"] == "ray":
            job.pop("file_sd_configs")
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ray_port}"]}]
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(work / "log").open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def _query(prom: str, expr: str) -> float:
    resp = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
    data = resp.json()["data"]["result"]
    return float(data[0]["value"][1]) if data else 0.0


def _wait_positive(prom: str, expr: str, timeout_s: float = 60, at_least: float = 0) -> float:
    """The value once it is above 0 and at least ``at_least``.

    Counters reach Prometheus in steps (replicas flush every second, Prometheus scrapes every
    second), so a test waits for the count it expects instead of taking the first sample.
    """
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = _query(prom, expr)
        if value > 0 and value >= at_least:
            return value
        time.sleep(1)
    raise AssertionError(f"{expr} stayed at {value} (< {max(at_least, 1)}) for {timeout_s}s")


@pytest.fixture(scope="module", name="traffic")
def traffic_fixture(platform, prometheus):
    repo = platform.data_dir / "store" / "models"
    model = write_add_sub(repo, name="prom_model")
    text = (model / "config.pbtxt").read_text()
    text += '\nparameters { key: "ray_max_replicas" value: { string_value: "2" } }\n'
    (model / "config.pbtxt").write_text(text)
    client = httpclient.InferenceServerClient(platform.host_port, network_timeout=180)
    client.load_model("prom_model")
    a = np.ones((2, 4), dtype=np.float32)
    inputs = [httpclient.InferInput(n, [2, 4], "FP32") for n in ("INPUT0", "INPUT1")]
    for tensor in inputs:
        tensor.set_data_from_numpy(a)
    for _ in range(20):
        client.infer("prom_model", inputs)
    api = platform.url + "/torc-service/v1"
    wf = httpx.post(api + "/workflows", json={"name": "prom", "user": "u"}).json()["id"]
    for i in range(4):
        httpx.post(api + "/jobs", json={"workflow_id": wf, "name": f"j{i}", "command": "true"})
    httpx.post(f"{api}/workflows/{wf}/initialize_jobs", json={})
    _torchserve_traffic(platform)
    claimed = httpx.post(f"{api}/workflows/{wf}/claim_next_jobs?limit=2", json={}).json()["jobs"]
    for job in claimed:
        httpx.post(f"{api}/jobs/{job['id']}/complete_job/completed/0",
                   json={"return_code": 0, "exec_time_minutes": 0.01}).raise_for_status()
    return wf


def _torchserve_traffic(platform) -> None:
    store = platform.data_dir / "store"
    work = store.parent / "prom-src"
    make_mar(store / "model-store", "prom_echo", ECHO_HANDLER, work=work / "m")
    make_war(store / "wf-store", "prom_wf", WF_SPEC, WF_FUNCTIONS, work=work / "w")
    make_mar(store / "model-store", "prom_metrics", METRICS_HANDLER, work=work / "h")
    params = {"url": "prom_echo.mar", "initial_workers": "1", "synchronous": "true"}
    httpx.post(platform.url + "/models", params=params, timeout=180).raise_for_status()
    # Two replicas: their handler metrics must add up on /metrics.
    params = {"url": "prom_metrics.mar", "initial_workers": "2", "synchronous": "true"}
    httpx.post(platform.url + "/models", params=params, timeout=180).raise_for_status()
    resp = httpx.post(platform.url + "/workflows", params={"url": "prom_wf.war"}, timeout=180)
    assert resp.status_code == 200, resp.text
    assert wait_route(f"{platform.url}/predictions/prom_echo", content=b"hi").status_code == 200
    assert wait_route(f"{platform.url}/wfpredict/prom_wf", content=b"hi").status_code == 200
    assert wait_route(f"{platform.url}/predictions/prom_metrics", content=b"hi").status_code == 200
    for _ in range(11):
        httpx.post(f"{platform.url}/predictions/prom_metrics", content=b"hi", timeout=30)
    for _ in range(4):
        httpx.post(f"{platform.url}/predictions/prom_echo", content=b"hi", timeout=30)
        httpx.post(f"{platform.url}/wfpredict/prom_wf", content=b"hi", timeout=30)


def test_prometheus_sees_inference_job_and_serve_series(prometheus, traffic):
    success = 'sum(nv_inference_request_success{model="prom_model"})'
    assert _wait_positive(prometheus, success, at_least=20) == 20
    count = 'sum(nv_inference_count{model="prom_model"})'
    assert _wait_positive(prometheus, count, at_least=40) == 40
    assert _wait_positive(prometheus, f'sum(torc_jobs{{workflow_id="{traffic}"}})', at_least=4) == 4
    completions = f'sum(torc_job_completions_total{{workflow_id="{traffic}"}})'
    assert _wait_positive(prometheus, completions, at_least=2) == 2
    assert _wait_positive(prometheus, 'sum(platform_api_requests_total)') > 0
    assert (
        _wait_positive(
            prometheus, 'sum(ts_inference_requests_total{model_name="prom_echo"})', at_least=5
        )
        >= 5
    )
    assert (
        _wait_positive(prometheus, 'sum(ts_inference_latency_microseconds{model_name="prom_echo"})')
        > 0
    )
    nodes = 'sum(platform_workflow_node_requests_total{workflow="prom_wf",outcome="success"})'
    assert _wait_positive(prometheus, nodes, at_least=10) >= 10
    assert _wait_positive(prometheus, 'sum(ray_serve_deployment_replica_healthy)') >= 1


def test_prometheus_sees_handler_metrics_summed_over_replicas(prometheus, traffic):
    # wait_route's successful call plus 11: every call counted once, whichever replica served it
    calls = 'sum(EchoCalls{ModelName="prom_metrics",Level="Model",Route="echo"})'
    assert _wait_positive(prometheus, calls, at_least=12) == 12
    series = httpx.get(
        prometheus + "/api/v1/series", params={"match[]": "EchoCalls"}, timeout=10
    ).json()["data"]
    assert {tuple(sorted(s)) for s in series} == {
        ("Hostname", "Level", "ModelName", "Route", "__name__", "instance", "job")
    }
    assert _wait_positive(prometheus, 'max(EchoTime{ModelName="prom_metrics"})') == 1.5
    # TorchServe's default backend metric, recorded for every model's batches
    assert _wait_positive(prometheus, 'count(PredictionTime{ModelName="prom_echo"})') == 1


def test_every_dashboard_query_names_an_exported_metric(prometheus, traffic):
    _wait_positive(prometheus, 'count(ray_serve_autoscaling_target_replicas)', timeout_s=60)
    exported = set(
        httpx.get(prometheus + "/api/v1/label/__name__/values", timeout=10).json()["data"]
    )
    missing = dashboard_metric_names() - exported - HARDWARE_ONLY
    assert not missing, f"dashboard queries metrics nobody exports: {sorted(missing)}"
