"""The Torc Ray runner on a real Ray cluster (the session ``platform``: 4 logical CPUs).

A 21-job DAG of shell commands in-process, and a workflow run through ``run_on_ray``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.ray
B = "/torc-service/v1"


def _post(
    client: httpx.Client, path: str, body: dict[str, Any] | None = None, **params: Any
) -> Any:
    resp = client.post(B + path, json=body if body is not None else {}, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _traced(name: str, trace: Path, seconds: float = 0.4) -> str:
    return (
        f'echo "start {name} $(date +%s.%N)" >> {trace}; sleep {seconds}; '
        f'echo "end {name} $(date +%s.%N)" >> {trace}; echo out-{name}'
    )


def _intervals(trace: Path) -> dict[str, list[float]]:
    spans: dict[str, list[float]] = {}
    for line in trace.read_text().splitlines():
        kind, name, stamp = line.split()
        spans.setdefault(name, [0.0, 0.0])[0 if kind == "start" else 1] = float(stamp)
    return spans


def _jobs(client: httpx.Client, wf: int) -> dict[str, dict[str, Any]]:
    items = client.get(
        B + "/jobs", params={"workflow_id": wf, "include_relationships": True}
    ).json()["items"]
    return {j["name"]: j for j in items}


def test_ray_runner_runs_dag_in_order_within_cpus(platform: Any, tmp_path: Path) -> None:
    from deployments.jobs import JobRunner

    trace = tmp_path / "trace.txt"
    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "ray-dag", "user": "test"})["id"]
    rr = {
        name: _post(client, "/resource_requirements", {"workflow_id": wf, "name": name, **body})[
            "id"
        ]
        for name, body in {
            "one": {"num_cpus": 1, "runtime": "PT1M"},
            "two": {"num_cpus": 2, "runtime": "PT1M"},
            "short": {"num_cpus": 1, "runtime": "PT2S"},
        }.items()
    }
    cpus = {}
    specs: list[tuple[str, str, list[str], str]] = []
    for i in range(6):
        specs.append((f"a{i}", "two" if i % 3 == 0 else "one", [], ""))
    for i in range(6):
        specs.append((f"b{i}", "one", [f"a{i}", f"a{(i + 1) % 6}"], ""))
    for i in range(4):
        specs.append((f"c{i}", "two" if i == 0 else "one", [f"b{i}", f"b{i + 2}"], ""))
    specs.append(("final", "one", [f"c{i}" for i in range(4)], ""))
    specs.append(("stderr", "one", [], "echo to-stdout; echo to-stderr >&2"))
    specs.append(("too_long", "short", [], "echo started; sleep 60"))
    specs.append(("after_too_long", "one", ["too_long"], "echo never"))
    specs.append(("kills_worker", "one", [], "kill -9 $PPID; sleep 5"))
    ids: dict[str, int] = {}
    for name, req, deps, command in specs:
        cpus[name] = 2 if req == "two" else 1
        body = {
            "workflow_id": wf,
            "name": name,
            "command": command or _traced(name, trace),
            "resource_requirements_id": rr[req],
            "depends_on_job_ids": [ids[d] for d in deps],
        }
        ids[name] = _post(client, "/jobs", body)["id"]
    assert len(ids) == 21
    _post(client, f"/workflows/{wf}/initialize_jobs")

    runner = JobRunner(
        platform.url, wf, log_dir=str(tmp_path / "logs"), poll_interval_s=0.1, idle_timeout_s=30
    )
    start = time.monotonic()
    summary = runner.run()
    assert time.monotonic() - start < 90

    jobs = _jobs(client, wf)
    dag = [name for name, *_ in specs[:17]]
    assert {jobs[n]["status"] for n in dag} == {"completed"}
    assert jobs["stderr"]["status"] == "completed"
    assert jobs["too_long"]["status"] == "terminated"
    assert jobs["after_too_long"]["status"] == "canceled"
    assert jobs["kills_worker"]["status"] == "failed"
    assert summary["completed"] == 18
    assert summary["terminated"] == 1
    assert summary["failed"] == 1
    assert client.get(B + f"/workflows/{wf}/is_complete").json()["is_complete"] is True

    spans = _intervals(trace)
    assert set(spans) == set(dag)
    for name, _req, deps, _cmd in specs[:17]:
        for dep in deps:
            assert spans[name][0] >= spans[dep][1], f"{name} started before {dep} ended"
    stamps = sorted({t for span in spans.values() for t in span})
    peak = max(sum(cpus[n] for n, (s, e) in spans.items() if s <= t < e) for t in stamps)
    assert 2 <= peak <= 4, f"CPU use peaked at {peak} on a 4-CPU cluster"

    results = client.get(B + "/results", params={"workflow_id": wf}).json()["items"]
    by_job = {r["job_id"]: r for r in results}
    assert by_job[ids["stderr"]]["stdout"] == "to-stdout\n"
    assert by_job[ids["stderr"]]["stderr"] == "to-stderr\n"
    assert by_job[ids["a1"]]["stdout"] == "out-a1\n"
    assert by_job[ids["too_long"]]["return_code"] != 0
    assert by_job[ids["too_long"]]["status"] == "terminated"
    assert "started" in by_job[ids["too_long"]]["stdout"]
    assert by_job[ids["kills_worker"]]["return_code"] == -1
    assert list((tmp_path / "logs").glob(f"job_{ids['final']}_run0_attempt1.o"))
    nodes = client.get(B + "/compute_nodes", params={"workflow_id": wf}).json()["items"]
    assert nodes
    assert all(n["compute_node_type"] == "ray" and n["is_active"] is False for n in nodes)
    client.close()


def test_run_on_ray_endpoint_runs_workflow_then_removes_its_app(platform: Any) -> None:
    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "ray-app", "user": "test"})["id"]
    first = _post(client, "/jobs", {"workflow_id": wf, "name": "first", "command": "echo one"})[
        "id"
    ]
    _post(
        client,
        "/jobs",
        {"workflow_id": wf, "name": "second", "command": "echo two", "depends_on_job_ids": [first]},
    )
    _post(client, f"/workflows/{wf}/initialize_jobs")
    started = _post(client, f"/workflows/{wf}/run_on_ray", {"poll_interval_s": 0.2})
    assert started["app_name"] == f"p-jobs-{wf}"
    assert started["recorded"] is True

    deadline = time.monotonic() + 120
    while not client.get(B + f"/workflows/{wf}/is_complete").json()["is_complete"]:
        assert time.monotonic() < deadline, client.get(B + f"/workflows/{wf}/run_on_ray").json()
        time.sleep(0.5)
    jobs = _jobs(client, wf)
    assert {j["status"] for j in jobs.values()} == {"completed"}
    results = client.get(B + "/results", params={"workflow_id": wf}).json()["items"]
    assert sorted(r["stdout"] for r in results) == ["one\n", "two\n"]
    logs = Path(platform.data_dir) / "torc" / "logs" / f"workflow_{wf}"
    assert (logs / f"job_{first}_run0_attempt1.o").read_text() == "one\n"

    while True:
        state = client.get(B + f"/workflows/{wf}/run_on_ray").json()
        if not state["recorded"] and state["status"] == "NOT_STARTED":
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    client.close()


def test_restarted_runner_reruns_jobs_its_dead_predecessor_left_running(
    platform: Any, tmp_path: Path
) -> None:
    from deployments.jobs import JobRunner

    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "orphans", "user": "test"})["id"]
    lost = _post(client, "/jobs", {"workflow_id": wf, "name": "lost", "command": "echo again"})
    spent = _post(client, "/jobs", {"workflow_id": wf, "name": "spent", "command": "echo no"})
    after = {"workflow_id": wf, "name": "after", "command": "echo after"}
    after["depends_on_job_ids"] = [lost["id"]]
    _post(client, "/jobs", after)
    _post(client, f"/workflows/{wf}/initialize_jobs")
    # A previous runner registered a Ray node, claimed and started both jobs, then died.
    dead = {"workflow_id": wf, "hostname": "gone", "compute_node_type": "ray", "is_active": True}
    dead_node = _post(client, "/compute_nodes", dead)["id"]
    claimed = _post(client, f"/workflows/{wf}/claim_next_jobs", limit=2)["jobs"]
    assert {j["id"] for j in claimed} == {lost["id"], spent["id"]}
    for job_id in (lost["id"], spent["id"]):
        started = client.put(B + f"/jobs/{job_id}/start_job/0/{dead_node}")
        assert started.json()["status"] == "running"
    # "spent" is already on its last allowed attempt.
    retried = client.post(B + f"/jobs/{spent['id']}/retry/0", params={"max_retries": 2})
    assert retried.json()["attempt_id"] == 2
    _post(client, f"/workflows/{wf}/claim_next_jobs", limit=1)
    client.put(B + f"/jobs/{spent['id']}/start_job/0/{dead_node}")

    runner = JobRunner(
        platform.url,
        wf,
        log_dir=str(tmp_path),
        poll_interval_s=0.1,
        recover_orphans=True,
        orphan_max_attempts=2,
    )
    summary = runner.run()
    jobs = _jobs(client, wf)
    assert jobs["lost"]["status"] == "completed"
    assert jobs["lost"]["attempt_id"] == 2
    assert jobs["after"]["status"] == "completed"
    assert jobs["spent"]["status"] == "terminated"
    assert summary["completed"] == 2
    node = client.get(B + f"/compute_nodes/{dead_node}").json()
    assert node["is_active"] is False
    client.close()


def test_recovery_releases_claims_of_a_dead_runner_only_when_no_other_runner_is_active(
    platform: Any,
) -> None:
    from deployments.job_exec import TorcRest, recover_orphans

    client = httpx.Client(base_url=platform.url, timeout=30)
    api = TorcRest(platform.url)

    def claimed_by_a_dead_runner(name: str, other_runner: bool) -> tuple[int, int]:
        wf = _post(client, "/workflows", {"name": name, "user": "test"})["id"]
        job = _post(client, "/jobs", {"workflow_id": wf, "name": "stuck", "command": "true"})
        _post(client, f"/workflows/{wf}/initialize_jobs")
        node = {"workflow_id": wf, "hostname": "gone", "compute_node_type": "ray"}
        _post(client, "/compute_nodes", {**node, "is_active": True})
        if other_runner:  # e.g. torc's own job runner on an HPC node, still alive
            live = {"workflow_id": wf, "hostname": "hpc", "compute_node_type": "local"}
            _post(client, "/compute_nodes", {**live, "is_active": True})
        assert _post(client, f"/workflows/{wf}/claim_next_jobs", limit=1)["jobs"]
        return wf, job["id"]

    wf, job_id = claimed_by_a_dead_runner("claims-alone", other_runner=False)
    assert recover_orphans(api, wf, set())["released"] == 1
    released = client.get(B + f"/jobs/{job_id}").json()
    assert (released["status"], released.get("attempt_id", 1)) == ("ready", 1)  # never ran

    wf, job_id = claimed_by_a_dead_runner("claims-shared", other_runner=True)
    assert "released" not in recover_orphans(api, wf, set())
    assert client.get(B + f"/jobs/{job_id}").json()["status"] == "pending"  # may be the live one's
    client.close()
