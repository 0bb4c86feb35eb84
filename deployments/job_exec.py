"""Ray-free helpers of the Torc job runner.

Running one command with a runtime limit, and a
small REST client for ``/torc-service/v1`` (the runner talks to the control plane like torc's
own runner does, so it works from any node of the cluster).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)

MAX_CAPTURE_BYTES = 64 * 1024
KILL_GRACE_S = 5.0


def now_iso() -> str:
    """UTC now in torc's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _tail(path: Path, limit: int = MAX_CAPTURE_BYTES) -> str:
    """The last ``limit`` bytes of a log file, decoded leniently."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > limit:
                handle.seek(size - limit)
            data = handle.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return ("...[truncated]...\n" + text) if size > limit else text


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(
    command: str,
    *,
    runtime_s: float | None,
    log_dir: str,
    tag: str,
    invocation_script: str | None = None,
    env: dict[str, str] | None = None,
    grace_s: float = KILL_GRACE_S,
) -> dict[str, Any]:
    """Run a job's shell command in its own process group, enforcing its runtime.

    Full stdout/stderr go to ``<log_dir>/<tag>.o`` / ``.e``; the result carries their tails.

    Args:
        command: the shell command (run with ``bash -c``).
        runtime_s: the job's runtime limit; past it the process group is terminated.
        log_dir: where the full logs are written.
        tag: file name stem of the logs (job id, run id, attempt).
        invocation_script: optional wrapper prepended to the command, as torc does.
        env: extra environment variables.
        grace_s: time between SIGTERM and SIGKILL.

    Returns:
        ``return_code``, ``status`` (completed/failed/terminated), ``exec_time_minutes``,
        ``stdout``, ``stderr`` (bounded), the log paths, the host and pid.
    """
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    out_path, err_path = Path(log_dir) / f"{tag}.o", Path(log_dir) / f"{tag}.e"
    full = f"{invocation_script} {command}" if invocation_script else command
    start = time.monotonic()
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            ["bash", "-c", full],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            proc.wait(timeout=runtime_s if runtime_s and runtime_s > 0 else None)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc, grace_s)
        finally:
            if proc.poll() is None:
                _kill_group(proc, 0.0)
    rc = proc.returncode if proc.returncode is not None else -9
    status = "terminated" if timed_out else ("completed" if rc == 0 else "failed")
    return {
        "return_code": rc,
        "status": status,
        "exec_time_minutes": (time.monotonic() - start) / 60.0,
        "completion_time": now_iso(),
        "stdout": _tail(out_path),
        "stderr": _tail(err_path),
        "stdout_path": str(out_path),
        "stderr_path": str(err_path),
        "timed_out": timed_out,
        "hostname": os.uname().nodename,
        "pid": os.getpid(),
    }


class TorcApiError(RuntimeError):
    """A non-2xx answer from the Torc API."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def credentials_from_env() -> tuple[str, str] | None:
    """HTTP Basic credentials for a control plane that requires them on management APIs.

    ``TORC_PASSWORD`` (with ``TORC_USER`` or ``$USER``), as the torc CLI reads them, else the
    platform admin (``CP_AUTH__ADMIN_USER``/``CP_AUTH__ADMIN_PASSWORD``) when both are set in
    the environment the Ray workers inherit.
    """
    if os.environ.get("TORC_PASSWORD"):
        user = os.environ.get("TORC_USER") or os.environ.get("USER", "admin")
        return user, os.environ["TORC_PASSWORD"]
    admin = os.environ.get("CP_AUTH__ADMIN_USER")
    secret = os.environ.get("CP_AUTH__ADMIN_PASSWORD")
    if admin and secret:
        return admin, secret
    return None


@dataclass
class TorcRest:
    """Minimal synchronous client of ``/torc-service/v1``."""

    url: str
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        base = self.url.rstrip("/")
        if not base.endswith("/torc-service/v1"):
            base += "/torc-service/v1"
        self._client = httpx.Client(
            base_url=base, timeout=self.timeout_s, auth=credentials_from_env()
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; returns the JSON body.

        Raises:
            TorcApiError: a non-2xx answer (with the server's message).
        """
        resp = self._client.request(method, path, **kwargs)
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text
            raise TorcApiError(resp.status_code, message)
        return resp.json()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def job_resources(rr: dict[str, Any]) -> dict[str, float]:
    """Ray resources of a job from its resource requirements (memory in bytes, runtime in s)."""
    return {
        "num_cpus": float(rr.get("num_cpus", 1)),
        "num_gpus": float(rr.get("num_gpus", 0)),
        "memory": float(parse_memory(rr.get("memory", "1m"))),
        "runtime_s": parse_runtime(rr.get("runtime", "P0DT1M")),
    }


def parse_memory(text: str) -> int:
    """Bytes in a torc memory string (the server already validated it)."""
    text = text.strip().lower()
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def parse_runtime(text: str) -> float:
    """Seconds in an ISO 8601 duration (the server already validated it)."""
    match = re.match(
        r"^P(?:([\d.]+)Y)?(?:([\d.]+)M)?(?:([\d.]+)W)?(?:([\d.]+)D)?"
        r"(?:T(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?)?$",
        text.strip().upper(),
    )
    if match is None:
        return 60.0
    factors = (31557600, 2629800, 604800, 86400, 3600, 60, 1)
    return float(sum(float(g or 0) * f for g, f in zip(match.groups(), factors, strict=True)))


def completion_entry(
    workflow_id: int, job_id: int, run_id: int, compute_node_id: int, outcome: dict[str, Any]
) -> dict[str, Any]:
    """One ``batch_complete_jobs`` entry from a ``run_command`` outcome."""
    result = {
        "job_id": job_id,
        "workflow_id": workflow_id,
        "run_id": run_id,
        "compute_node_id": compute_node_id,
        "return_code": outcome["return_code"],
        "exec_time_minutes": outcome["exec_time_minutes"],
        "completion_time": outcome["completion_time"],
        "status": outcome["status"],
        "stdout": outcome.get("stdout"),
        "stderr": outcome.get("stderr"),
    }
    return {"job_id": job_id, "status": outcome["status"], "run_id": run_id, "result": result}


def recover_orphans(
    api: TorcRest, workflow_id: int, own_node_ids: set[int], max_attempts: int = 3
) -> dict[str, int]:
    """Re-run jobs a dead runner left ``running``; give up on them after ``max_attempts``.

    A dead runner's Ray compute nodes are still marked active (it never deactivated them) and
    its running jobs would otherwise stay lost in ``running``. Their processes died with it (Ray
    tasks share their owner's fate), so each such job goes back to ``ready`` with
    ``attempt_id + 1`` (torc's ``retry``) and runs again: a node, runner or whole-cluster loss
    does not lose work. A job already on its ``max_attempts``-th attempt is completed as
    ``terminated`` instead, so one that keeps killing its runner cannot loop forever. The stale
    compute nodes are marked inactive.

    A job the dead runner had claimed but not started (``pending``) goes back to ``ready`` (same
    attempt: it never ran) when no other runner of the workflow is active, since a claim does
    not record its runner and a live one could hold it.

    Returns:
        ``{"retried": n, "terminated": m, "released": k}``.
    """
    params = {"workflow_id": workflow_id, "is_active": "true"}
    nodes = api.request("GET", "/compute_nodes", params=params)["items"]
    stale = [
        n["id"]
        for n in nodes
        if n.get("compute_node_type") == "ray" and n["id"] not in own_node_ids
    ]
    run_id = api.request("GET", f"/workflows/{workflow_id}/status")["run_id"]
    counts = {"retried": 0, "terminated": 0}
    for node_id in stale:
        query = {"workflow_id": workflow_id, "active_compute_node_id": node_id}
        for job in api.request("GET", "/jobs", params=query)["items"]:
            if job["status"] != "running":
                continue
            try:
                if int(job.get("attempt_id") or 1) < max_attempts:
                    api.request(
                        "POST",
                        f"/jobs/{job['id']}/retry/{run_id}",
                        params={"max_retries": max_attempts},
                    )
                    counts["retried"] += 1
                    continue
                outcome = {
                    "return_code": -1,
                    "exec_time_minutes": 0.0,
                    "completion_time": now_iso(),
                    "status": "terminated",
                    "stderr": f"the runners of all {max_attempts} attempts of this job died",
                }
                body = completion_entry(workflow_id, job["id"], run_id, node_id, outcome)["result"]
                api.request(
                    "POST", f"/jobs/{job['id']}/complete_job/terminated/{run_id}", json=body
                )
                counts["terminated"] += 1
            except TorcApiError as exc:  # another runner got there first
                logger.info("orphaned job %s left as is: %s", job["id"], exc)
        api.request("PUT", f"/compute_nodes/{node_id}", json={"is_active": False})
    others = [n for n in nodes if n["id"] not in own_node_ids and n["id"] not in stale]
    if stale and not others:  # no live runner but us: every pending claim was the dead one's
        counts["released"] = _release_pending(api, workflow_id, run_id)
    if any(counts.values()):
        logger.info("recovered jobs left by a dead runner: %s", counts)
    return counts


def _release_pending(api: TorcRest, workflow_id: int, run_id: int) -> int:
    """Send ``pending`` jobs (claimed, never started) back to ``ready``; how many were."""
    released = 0
    while True:
        query = {"workflow_id": workflow_id, "status": "pending", "limit": 1000}
        page = api.request("GET", "/jobs", params=query)
        for job in page["items"]:
            try:
                api.request("PUT", f"/jobs/{job['id']}/manage_status_change/ready/{run_id}")
                released += 1
            except TorcApiError as exc:  # started or changed meanwhile
                logger.info("pending job %s left as is: %s", job["id"], exc)
        if not page["items"] or not page.get("has_more"):
            return released


DEFAULT_MAX_RETRIES = 3
RECOVERY_TIMEOUT_S = 600.0


def failure_action(
    rules: list[dict[str, Any]], return_code: int, attempt_id: int
) -> tuple[str, dict[str, Any] | None]:
    """What a failure handler says about a failed attempt (torc's runner algorithm).

    The first rule whose ``exit_codes`` holds the return code matches, else the first with
    ``match_all_exit_codes``. A match retries unless ``attempt_id >= max_retries`` (so a job
    runs at most ``max_retries`` times; attempts start at 1).

    Returns:
        ``("retry", rule)``, ``("exhausted", rule)`` or ``("no_match", None)``.
    """
    rule = next((r for r in rules if return_code in (r.get("exit_codes") or [])), None)
    if rule is None:
        rule = next((r for r in rules if r.get("match_all_exit_codes")), None)
    if rule is None:
        return "no_match", None
    if attempt_id >= int(rule.get("max_retries", DEFAULT_MAX_RETRIES)):
        return "exhausted", rule
    return "retry", rule


def run_recovery_script(script: str, env: dict[str, str]) -> int:
    """Run a rule's ``recovery_script`` or an action's command (shell, runner cwd, ``TORC_*``).

    Its failure is logged only: for a recovery script the retry is already scheduled, as in
    torc's runner.

    Returns:
        The script's exit code (-1 when it could not run or timed out).
    """
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            env={**os.environ, **env},
            capture_output=True,
            timeout=RECOVERY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("recovery script failed to run: %s", exc)
        return -1
    if done.returncode:
        logger.warning(
            "recovery script exited %s: %s",
            done.returncode,
            done.stderr[-2000:].decode(errors="replace"),
        )
    return done.returncode
