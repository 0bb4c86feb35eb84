"""The Ray runner spreads jobs over every node.

A 2-node local Ray cluster (``ray.cluster_utils``)
in a subprocess, since the test session's own Ray cluster already owns this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, ray_test_env

pytestmark = pytest.mark.ray

SCRIPT = r"""
import json, sys, threading, time
sys.path.insert(0, ROOT)
import httpx, ray, uvicorn
from ray.cluster_utils import Cluster
from control_plane.app import create_app
from control_plane.settings import Settings
from tests.fakes import FakeServeGateway
from deployments.jobs import JobRunner

head = {"num_cpus": 2, "include_dashboard": False, "gcs_server_port": GCS_PORT}
cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
ray.init(address=cluster.address, log_to_driver=False)
app = create_app(Settings(data_dir=DATA), gateway_factory=FakeServeGateway, run_startup_hooks=False)
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.05)
url = f"http://127.0.0.1:{PORT}"
B = url + "/torc-service/v1"
c = httpx.Client(timeout=30)
wf = c.post(B + "/workflows", json={"name": "spread", "user": "t"}).json()["id"]
for i in range(8):
    c.post(B + "/jobs", json={"workflow_id": wf, "name": f"j{i}", "command": "sleep 1; hostname"})
c.post(B + "/workflows/1/initialize_jobs", json={})
summary = JobRunner(url, wf, log_dir=DATA + "/logs", poll_interval_s=0.1, idle_timeout_s=20).run()
results = c.get(B + "/results", params={"workflow_id": wf}).json()["items"]
nodes = c.get(B + "/compute_nodes", params={"workflow_id": wf}).json()["items"]
print("RESULT " + json.dumps({"summary": summary, "results": results, "nodes": nodes}))
server.should_exit = True
ray.shutdown()
cluster.shutdown()
"""


def test_runner_spreads_jobs_over_every_node(tmp_path: Path) -> None:
    script = (
        SCRIPT.replace("ROOT", repr(str(ROOT)))
        .replace("GCS_PORT", str(free_port()))
        .replace("DATA", repr(str(tmp_path)))
        .replace("PORT", str(free_port()))
    )
    path = tmp_path / "multinode.py"
    path.write_text(script)
    env = {**os.environ, **ray_test_env(fast_ingress=False)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(lines[0][len("RESULT ") :])
    assert data["summary"]["completed"] == 8
    assert len(data["nodes"]) == 2
    assert {n["num_cpus"] for n in data["nodes"]} == {2}
    used = {r["compute_node_id"] for r in data["results"]}
    assert used == {n["id"] for n in data["nodes"]}, "jobs did not run on every node"
    per_node = [
        sum(1 for r in data["results"] if r["compute_node_id"] == n["id"]) for n in data["nodes"]
    ]
    assert min(per_node) >= 2, per_node
