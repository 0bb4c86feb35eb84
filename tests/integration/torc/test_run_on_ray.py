"""``/workflows/{id}/run_on_ray`` records the runner as a desired Serve application.

The real Serve path is tested in tests/serve/test_torc_runner.py).
"""

from __future__ import annotations

import httpx

from control_plane.integrations.serve_types import AppSpec
from tests.fakes import FakeServeGateway

B = "/torc-service/v1"


async def test_run_on_ray_records_and_removes_runner_app(
    client: httpx.AsyncClient, gateway: FakeServeGateway
) -> None:
    assert (await client.post(f"{B}/workflows/1/run_on_ray")).status_code == 404
    await client.post(f"{B}/workflows", json={"name": "w", "user": "u"})
    started = await client.post(
        f"{B}/workflows/1/run_on_ray", json={"poll_interval_s": 0.2, "max_parallel_jobs": 3}
    )
    assert started.status_code == 200
    assert started.json()["app_name"] == "p-jobs-1"
    assert started.json()["status"] == "RUNNING"
    spec: AppSpec = gateway.apps["p-jobs-1"]
    assert spec.route_prefix is None
    assert spec.builder == "deployments.jobs:build_job_runner"
    assert spec.args.workflow_id == 1
    assert spec.args.max_parallel_jobs == 3
    assert spec.args.poll_interval_s == 0.2
    assert spec.args.log_dir.endswith("torc/logs/workflow_1")
    bad = await client.post(f"{B}/workflows/1/run_on_ray", json={"poll_interval_s": -1})
    assert bad.status_code == 422
    state = (await client.get(f"{B}/workflows/1/run_on_ray")).json()
    assert state["recorded"] is True
    assert (await client.delete(f"{B}/workflows/1/run_on_ray")).json()["recorded"] is False
    assert "p-jobs-1" in gateway.deleted
    assert "p-jobs-1" not in gateway.apps
    assert (await client.get(f"{B}/workflows/1/run_on_ray")).json()["status"] == "NOT_STARTED"
