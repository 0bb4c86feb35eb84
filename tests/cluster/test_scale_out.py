"""Scale-out as a new user does it: a real 2-node Ray cluster, PostgreSQL, 2 control planes.

``ray start --head`` and ``ray start --address=...`` (each node with its own resource label),
then ``serve run`` on a copy of ``serve_config.yaml`` that only changes configuration:
``RAY_ADDRESS``, the PostgreSQL URL, an S3 artifact store (``store.url``, a real S3 API served
by moto) and ``num_replicas: 2``. The operator puts the model repository and the archives in
the bucket only. It shows:

- both control-plane replicas answer, and what one records the other serves;
- a model with 2 replicas gets one on each node and answers;
- Torc jobs run on both nodes;
- killing the worker node's raylet leaves the platform answering, and Serve replaces the lost
  replicas (the model's on a node that joins afterwards: it allows one replica per node);
- replicas load the model from the object store into their node's cache;
- a whole-cluster restart (every Ray process killed, the control plane's local working copy of
  the store deleted, a new cluster with empty caches, ``serve run`` again) on the same
  PostgreSQL and bucket brings back the model, the TorchServe workflow, the MLServe app and the
  job that was running when the cluster died.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployments.contracts.artifacts import RemoteStore
from tests.cluster.local_cluster import LocalCluster
from tests.conftest import ROOT, create_pg_database, drop_pg_database, free_port, ray_test_env
from tests.integration.torchserve.builders import ECHO_HANDLER, make_mar, make_war
from tests.model_repos import write_add_sub
from tests.s3_server import CREDENTIALS, S3Server
from tests.serve_run import start_serve_run, stop_serve_run, wait_http_ok

pytestmark = [pytest.mark.compat, pytest.mark.slow, pytest.mark.postgres]

ADMIN = ("admin", "admin")
TORC = "/torc-service/v1"
MODEL = "add_sub2"
ADD_SUB_BODY = {
    "inputs": [
        {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
    ]
}
WF_SPEC = """
models:
  retry-attempts: 1
  timeout-ms: 10000
  echo:
    url: echo.mar
dag:
  pre: [echo]
  echo: [post]
"""
WF_FUNCTIONS = """
import json


def pre(data, context):
    if data is None:
        return None
    return [(row.get("data") or row.get("body")) for row in data]


def post(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = row["body"]
        if isinstance(value, (bytes, bytearray)):
            value = json.loads(value)
        out.append({"post": value})
    return out
"""


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until ``predicate`` returns something truthy; HTTP errors count as not yet."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = repr(exc)
        else:
            if last and not isinstance(last, tuple):  # a tuple carries what went wrong
                return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {last!r}")


def infer_ok(api: httpx.Client) -> bool | tuple[int, str]:
    resp = api.post(f"/v2/models/{MODEL}/infer", json=ADD_SUB_BODY)
    if resp.status_code != 200:
        return (resp.status_code, resp.text[:200])
    return resp.json()["outputs"][0]["data"] == [2, 3, 4, 5]


@pytest.fixture(name="pg_url")
def pg_url_fixture(postgres_admin_url: str) -> Iterator[str]:
    url = create_pg_database(postgres_admin_url)
    try:
        yield url
    finally:
        drop_pg_database(postgres_admin_url, url)


def _write_artifacts(operator: Path, work: Path, url: str, options: dict[str, str]) -> None:
    """A 2-instance python model, a .mar and a .war, uploaded to the bucket as an operator would."""
    model = write_add_sub(operator / "models", MODEL)
    config = (model / "config.pbtxt").read_text().replace("count: 1", "count: 2")
    config += 'parameters { key: "ray_max_replicas_per_node" value: { string_value: "1" } }\n'
    (model / "config.pbtxt").write_text(config.replace('"add_sub"', f'"{MODEL}"'))
    make_mar(operator / "model-store", "echo", ECHO_HANDLER, work=work / "echo")
    make_war(operator / "wf-store", "pipeline", WF_SPEC, WF_FUNCTIONS, work=work / "wf")
    bucket = RemoteStore(url, options)
    bucket.publish(model, f"models/{MODEL}")
    bucket.publish(operator / "model-store" / "echo.mar", "model-store/echo.mar")
    bucket.publish(operator / "wf-store" / "pipeline.war", "wf-store/pipeline.war")


def _config(tmp_path: Path, port: int, pg_url: str, store: dict[str, Any]) -> Path:
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    config["http_options"]["port"] = port
    args = config["applications"][0]["args"]
    args.update(
        {
            "data_dir": str(tmp_path / "var"),
            "num_replicas": 2,
            "public_url": f"http://127.0.0.1:{port}",
            "db": {"url": pg_url},
            "store": store,
        }
    )
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _seen_from_other_replica(
    api: httpx.Client,
    path: str,
    writer: str,
    check: Callable[[httpx.Response], bool],
    method: str = "GET",
) -> None:
    """Call ``path`` until a control-plane replica other than ``writer`` answers it, correctly."""
    for _ in range(200):
        resp = api.request(method, path)
        assert resp.status_code == 200, resp.text
        assert check(resp), resp.text
        if resp.headers["x-served-by"] != writer:
            return
    raise AssertionError(f"no other control-plane replica answered {path}")


def _start_platform(
    tmp_path: Path, env: dict[str, str], config: Path, url: str, log: Path
) -> tuple[LocalCluster, subprocess.Popen]:
    cluster = LocalCluster(tmp_path, env)
    cluster.start()
    proc = start_serve_run(config, {**env, "RAY_ADDRESS": cluster.address}, log)
    try:
        wait_http_ok(url + "/v2/health/ready", proc, log, timeout_s=240)
    except AssertionError:
        stop_serve_run(proc)
        cluster.stop()
        raise
    return cluster, proc


def _kill_all(cluster: LocalCluster, proc: subprocess.Popen) -> None:
    """The whole cluster dies at once (no graceful Serve shutdown), then the driver."""
    cluster.stop()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 9)
    proc.wait(timeout=30)


def test_two_nodes_two_control_planes_on_postgres(
    tmp_path: Path, pg_url: str, s3_server: S3Server
) -> None:
    bucket = s3_server.make_bucket("scale-out")
    store_url = f"{bucket}/platform"
    operator = tmp_path / "operator"
    _write_artifacts(operator, tmp_path / "src", store_url, s3_server.options())
    working_copy = tmp_path / "cp-store"
    store = {"root": str(working_copy), "url": store_url, "options": s3_server.options()}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = _config(tmp_path, port, pg_url, store)
    env = {**os.environ, **ray_test_env(fast_ingress=True), **CREDENTIALS}
    env["PLATFORM_ARTIFACT_CACHE"] = str(tmp_path / "cache-1")
    env.pop("RAY_ADDRESS", None)
    log = tmp_path / "serve.log"

    cluster, proc = _start_platform(tmp_path, env, config, url, log)
    api = httpx.Client(base_url=url, auth=ADMIN, timeout=240)
    try:
        assert set(cluster.alive_nodes().values()) == {"node_head", "node_worker"}
        # 1. Two control-plane replicas answer, one Serve application.
        # Ready means one control-plane replica answers; the second may still be starting.
        wait_for(
            lambda: len(cluster.replicas("control-plane").get("ControlPlane", [])) == 2,
            120,
            "2 control-plane replicas",
        )
        wait_for(
            lambda: len({api.get("/healthz").headers["x-served-by"] for _ in range(30)}) == 2,
            60,
            "both control-plane replicas answering",
        )

        # 2. What one replica records, the other serves (users, Torc workflows).
        created = api.post("/api/users", json={"name": "alice", "password": "pw-alice"})
        assert created.status_code == 201, created.text
        _seen_from_other_replica(
            api, "/api/users/alice", created.headers["x-served-by"],
            lambda r: r.json()["data"]["name"] == "alice" if "data" in r.json()
            else r.json()["name"] == "alice",
        )
        wf = api.post(TORC + "/workflows", json={"name": "spread", "user": "ops"})
        assert wf.status_code == 200, wf.text
        wf_id = wf.json()["id"]
        _seen_from_other_replica(
            api, f"{TORC}/workflows/{wf_id}", wf.headers["x-served-by"],
            lambda r: r.json()["name"] == "spread",
        )

        # 3. A model with 2 replicas gets one on each node and answers.
        loaded = api.post(f"/v2/repository/models/{MODEL}/load", json={})
        assert loaded.status_code == 200, loaded.text
        _seen_from_other_replica(
            api,
            "/v2/repository/index",
            loaded.headers["x-served-by"],
            lambda r: {"name": MODEL, "version": "1", "state": "READY", "reason": ""} in r.json(),
            method="POST",
        )
        assert cluster.replicas(f"p-v2-{MODEL}")["TritonModel"] == ["node_head", "node_worker"]
        for _ in range(10):
            assert infer_ok(api) is True
        cached = list((tmp_path / "cache-1").glob(f"*/{MODEL}/config.pbtxt"))
        assert cached, "the replicas did not load the model from the object store"

        # 4. Torc jobs run on both nodes.
        for i in range(6):
            job = {"workflow_id": wf_id, "name": f"j{i}", "command": "sleep 2; hostname"}
            assert api.post(TORC + "/jobs", json=job).status_code == 200
        assert api.post(f"{TORC}/workflows/{wf_id}/initialize_jobs", json={}).status_code == 200
        started = api.post(f"{TORC}/workflows/{wf_id}/run_on_ray", json={"poll_interval_s": 0.2})
        assert started.status_code == 200, started.text
        wait_for(
            lambda: api.get(f"{TORC}/workflows/{wf_id}/is_complete").json()["is_complete"],
            180,
            "the spread workflow",
        )
        results = api.get(TORC + "/results", params={"workflow_id": wf_id}).json()["items"]
        assert len(results) == 6
        assert all(r["return_code"] == 0 for r in results)
        nodes = api.get(TORC + "/compute_nodes", params={"workflow_id": wf_id}).json()["items"]
        assert len(nodes) == 2
        assert {r["compute_node_id"] for r in results} == {n["id"] for n in nodes}

        # 5. State for the restart: a TorchServe workflow, an MLServe app with a consumer.
        reg = api.post("/workflows", params={"url": "pipeline.war"})
        assert reg.status_code == 200, reg.text
        assert api.post("/wfpredict/pipeline", content=b"hello").status_code == 200
        key = api.post("/api/users", json={"name": "bob", "password": "pw-bob"}).json()["key"]
        assert api.post("/api/apps", json={"name": "shop", "retries": 2}).status_code == 201
        source = operator / "models" / MODEL
        files = [
            ("files[]", ("config.pbtxt", (source / "config.pbtxt").read_bytes())),
            ("files[]", ("1/model.py", (source / "1" / "model.py").read_bytes())),
        ]
        up = api.post("/api/models", data={"name": "mls_add"}, files=[
            (f, (n, body.replace(MODEL.encode(), b"mls_add"))) for f, (n, body) in files
        ])
        assert up.status_code == 201, up.text
        assert api.post("/api/models/mls_add/load", json={"triton_id": 0}).status_code == 200
        assert api.post("/api/apps/shop/routes/mls_add").status_code == 201
        assert api.post("/api/users/bob/apps/shop/auth").status_code == 200
        gateway_body = {**ADD_SUB_BODY}

        def via_gateway() -> bool | tuple[int, str]:
            resp = api.post("/apps/shop/mls_add", json=gateway_body, headers={"apikey": key},
                            auth=None)
            try:
                ok = resp.status_code == 200 and resp.json()["outputs"][0]["data"] == [2, 3, 4, 5]
            except (ValueError, KeyError, IndexError, TypeError):
                # Seen once in CI right after the node loss: a 200 whose body was
                # "127.0.0.1:<port>". Every node of this cluster is 127.0.0.1, so a port of the
                # dead node's replica can be taken by a process of the node that joins before
                # Serve drops the stale route; not yet recovered, and the wait goes on.
                ok = False
            return ok or (resp.status_code, resp.text[:200])

        wait_for(via_gateway, 90, "the gateway route")

        # 6. The worker node's raylet dies: the platform keeps answering on the head node, and
        # the lost replica is replaced on the node that joins next (one replica per node).
        cluster.nodes[1].kill_raylet()
        wait_for(lambda: set(cluster.alive_nodes().values()) == {"node_head"}, 120, "node loss")
        wait_for(lambda: infer_ok(api), 60, "inference after the node loss")
        cluster.add_node("node_spare")
        wait_for(
            lambda: cluster.replicas(f"p-v2-{MODEL}").get("TritonModel")
            == ["node_head", "node_spare"],
            180,
            "the lost model replica replaced on the new node",
        )
        assert infer_ok(api) is True
        wait_for(
            lambda: len(cluster.replicas("control-plane").get("ControlPlane", [])) == 2,
            120,
            "2 control-plane replicas again",
        )
        assert api.get("/api/users/alice").status_code == 200
        wait_for(via_gateway, 60, "the gateway after the node loss")

        # 7. A job is running when the whole cluster dies.
        long_wf = api.post(TORC + "/workflows", json={"name": "unfinished", "user": "ops"})
        long_id = long_wf.json()["id"]
        job = {"workflow_id": long_id, "name": "long", "command": "sleep 8; echo finished"}
        assert api.post(TORC + "/jobs", json=job).status_code == 200
        api.post(f"{TORC}/workflows/{long_id}/initialize_jobs", json={})
        api.post(f"{TORC}/workflows/{long_id}/run_on_ray", json={"poll_interval_s": 0.2})
        wait_for(
            lambda: api.get(TORC + "/jobs", params={"workflow_id": long_id}).json()["items"][0][
                "status"
            ]
            == "running",
            120,
            "the long job running",
        )
    finally:
        api.close()
        _kill_all(cluster, proc)

    # 8. A new cluster, the same PostgreSQL and bucket, no local copy, empty caches: all comes back.
    shutil.rmtree(working_copy)
    env["PLATFORM_ARTIFACT_CACHE"] = str(tmp_path / "cache-2")
    cluster, proc = _start_platform(tmp_path, env, config, url, log)
    api = httpx.Client(base_url=url, auth=ADMIN, timeout=240)
    try:
        wait_for(lambda: infer_ok(api), 240, "the model after the restart")
        wait_for(
            lambda: cluster.replicas(f"p-v2-{MODEL}").get("TritonModel")
            == ["node_head", "node_worker"],
            120,
            "one model replica per node after the restart",
        )
        assert list((tmp_path / "cache-2").glob(f"*/{MODEL}/config.pbtxt"))
        wait_for(
            lambda: api.post("/wfpredict/pipeline", content=b"again").status_code == 200,
            240,
            "the TorchServe workflow after the restart",
        )
        wait_for(via_gateway, 240, "the MLServe app route after the restart")
        assert api.get("/api/users/alice").status_code == 200

        def long_job() -> dict[str, Any] | None:
            item = api.get(TORC + "/jobs", params={"workflow_id": long_id}).json()["items"][0]
            return item if item["status"] == "completed" else None

        done = wait_for(long_job, 240, "the unfinished job to run again and complete")
        assert done["attempt_id"] == 2
        results = api.get(TORC + "/results", params={"workflow_id": long_id}).json()["items"]
        assert [r["return_code"] for r in results if r["status"] == "completed"] == [0]
    finally:
        api.close()
        _kill_all(cluster, proc)
