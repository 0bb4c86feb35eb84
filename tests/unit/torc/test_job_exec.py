"""The runner's Ray-free command execution: exit codes, logs, runtime enforcement."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deployments.job_exec import MAX_CAPTURE_BYTES, job_resources, run_command


def test_run_command_captures_exit_code_and_output(tmp_path: Path) -> None:
    result = run_command(
        "echo out; echo err >&2; exit 3", runtime_s=10, log_dir=str(tmp_path), tag="t1"
    )
    assert (result["return_code"], result["status"]) == (3, "failed")
    assert result["stdout"] == "out\n"
    assert result["stderr"] == "err\n"
    assert Path(result["stdout_path"]).read_text() == "out\n"


def test_run_command_bounds_captured_output_but_keeps_full_log(tmp_path: Path) -> None:
    result = run_command(
        "head -c 200000 /dev/zero | tr '\\0' x", runtime_s=10, log_dir=str(tmp_path), tag="big"
    )
    assert result["status"] == "completed"
    assert len(result["stdout"]) < MAX_CAPTURE_BYTES + 100
    assert os.path.getsize(result["stdout_path"]) == 200000


def test_run_command_terminates_process_group_past_runtime(tmp_path: Path) -> None:
    marker = tmp_path / "child_survived"
    start = time.monotonic()
    result = run_command(
        f"(sleep 3; touch {marker}) & sleep 30",
        runtime_s=0.5,
        log_dir=str(tmp_path),
        tag="slow",
        grace_s=0.5,
    )
    assert result["status"] == "terminated"
    assert result["timed_out"] is True
    assert time.monotonic() - start < 5
    time.sleep(3.5)
    assert not marker.exists(), "a child of the job outlived the kill"


def test_job_resources_parse_requirements() -> None:
    res = job_resources({"num_cpus": 2, "num_gpus": 0, "memory": "512k", "runtime": "PT1M30S"})
    assert res == {"num_cpus": 2.0, "num_gpus": 0.0, "memory": 524288.0, "runtime_s": 90.0}


def test_runner_credentials_come_from_the_environment(monkeypatch) -> None:
    from deployments.job_exec import credentials_from_env

    for name in ("TORC_PASSWORD", "TORC_USER", "CP_AUTH__ADMIN_USER", "CP_AUTH__ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert credentials_from_env() is None
    monkeypatch.setenv("CP_AUTH__ADMIN_USER", "root")
    monkeypatch.setenv("CP_AUTH__ADMIN_PASSWORD", "s3cret")
    assert credentials_from_env() == ("root", "s3cret")
    monkeypatch.setenv("TORC_USER", "alice")
    monkeypatch.setenv("TORC_PASSWORD", "pw")
    assert credentials_from_env() == ("alice", "pw")
