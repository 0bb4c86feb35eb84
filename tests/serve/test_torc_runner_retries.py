"""The Ray runner applies failure handlers: retries, recovery scripts, pending_failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.ray
B = "/torc-service/v1"


def _post(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
    resp = client.post(B + path, json=body if body is not None else {})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_ray_runner_retries_matching_failures_then_fails(platform: Any, tmp_path: Path) -> None:
    from deployments.jobs import JobRunner

    marks = tmp_path / "recovered.txt"
    runs = tmp_path / "runs.txt"
    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "retries", "user": "test"})["id"]
    rules = [
        {
            "exit_codes": [3],
            "max_retries": 3,
            "recovery_script": (
                f'echo "$TORC_JOB_NAME $TORC_ATTEMPT_ID $TORC_RETURN_CODE" >> {marks}'
            ),
        }
    ]
    handler = _post(
        client, "/failure_handlers", {"workflow_id": wf, "name": "h", "rules": json.dumps(rules)}
    )["id"]
    ids = {
        name: _post(
            client,
            "/jobs",
            {
                "workflow_id": wf,
                "name": name,
                "command": command,
                "failure_handler_id": handler,
                "env": {"STAGE": "s1"},
            },
        )["id"]
        for name, command in (
            ("flaky", f'echo "$TORC_JOB_NAME $TORC_ATTEMPT_ID $STAGE" >> {runs}; exit 3'),
            ("other_code", "exit 4"),
        )
    }
    after = _post(
        client,
        "/jobs",
        {
            "workflow_id": wf,
            "name": "after",
            "command": "true",
            "depends_on_job_ids": [ids["flaky"]],
        },
    )["id"]
    _post(client, f"/workflows/{wf}/initialize_jobs")
    runner = JobRunner(
        platform.url, wf, log_dir=str(tmp_path / "logs"), poll_interval_s=0.1, idle_timeout_s=20
    )
    summary = runner.run()
    flaky = client.get(f"{B}/jobs/{ids['flaky']}").json()
    assert (flaky["status"], flaky["attempt_id"], flaky["origin"]) == ("failed", 3, "retry")
    other = client.get(f"{B}/jobs/{ids['other_code']}").json()
    assert (other["status"], other["attempt_id"]) == ("failed", 1)
    assert client.get(f"{B}/jobs/{after}").json()["status"] == "canceled"
    rows = client.get(f"{B}/results", params={"workflow_id": wf, "all_runs": True}).json()["items"]
    attempts = sorted((r["job_id"], r["attempt_id"], r["return_code"]) for r in rows)
    assert attempts == [
        (ids["flaky"], 1, 3),
        (ids["flaky"], 2, 3),
        (ids["flaky"], 3, 3),
        (ids["other_code"], 1, 4),
    ]
    assert marks.read_text().split("\n")[:2] == ["flaky 1 3", "flaky 2 3"]
    assert runs.read_text().splitlines() == ["flaky 1 s1", "flaky 2 s1", "flaky 3 s1"]
    assert summary["retried"] == 2
    assert summary["failed"] == 2


def test_ray_runner_reports_unmatched_failures_as_pending_failed_when_asked(
    platform: Any, tmp_path: Path
) -> None:
    from deployments.jobs import JobRunner

    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "pf", "user": "t", "use_pending_failed": True})["id"]
    job = _post(client, "/jobs", {"workflow_id": wf, "name": "bad", "command": "exit 7"})["id"]
    _post(client, f"/workflows/{wf}/initialize_jobs")
    runner = JobRunner(
        platform.url, wf, log_dir=str(tmp_path / "logs"), poll_interval_s=0.1, idle_timeout_s=2
    )
    summary = runner.run()
    current = {"User-Agent": "OpenAPI-Generator/0.21.0/python"}
    assert client.get(f"{B}/jobs/{job}", headers=current).json()["status"] == "pending_failed"
    assert summary.get("pending_failed") == 1


def test_ray_runner_runs_run_commands_actions_once(platform: Any, tmp_path: Path) -> None:
    from deployments.jobs import JobRunner

    log = tmp_path / "actions.txt"
    client = httpx.Client(base_url=platform.url, timeout=30)
    wf = _post(client, "/workflows", {"name": "actions", "user": "t"})["id"]
    job = _post(client, "/jobs", {"workflow_id": wf, "name": "j", "command": "sleep 0.2"})["id"]
    for trigger, extra in (
        ("on_workflow_start", {}),
        ("on_jobs_complete", {"job_ids": [job]}),
        ("on_workflow_complete", {}),
        ("on_worker_complete", {}),
    ):
        command = f'echo "{trigger} $TORC_WORKFLOW_ID" >> {log}'
        _post(
            client,
            f"/workflows/{wf}/actions",
            {
                "trigger_type": trigger,
                "action_type": "run_commands",
                "action_config": {"commands": [command]},
                **extra,
            },
        )
    sched = _post(
        client,
        f"/workflows/{wf}/actions",
        {
            "trigger_type": "on_workflow_start",
            "action_type": "schedule_nodes",
            "action_config": {"num_allocations": 1},
        },
    )["id"]
    _post(client, f"/workflows/{wf}/initialize_jobs")
    runner = JobRunner(
        platform.url, wf, log_dir=str(tmp_path / "logs"), poll_interval_s=0.1, idle_timeout_s=20
    )
    summary = runner.run()
    lines = log.read_text().splitlines()
    assert lines[0] == f"on_workflow_start {wf}"
    assert sorted(lines) == sorted(
        f"{t} {wf}"
        for t in (
            "on_workflow_start",
            "on_jobs_complete",
            "on_workflow_complete",
            "on_worker_complete",
        )
    )
    assert summary["actions"] == 4
    pending = client.get(f"{B}/workflows/{wf}/actions/pending").json()
    assert [a["id"] for a in pending] == [sched]  # schedule_nodes: stored, left for schedulers
