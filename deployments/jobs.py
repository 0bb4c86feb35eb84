"""The Torc job runner on Ray.

Claims ready jobs over REST and runs each command as a Ray task with the job's CPUs, GPUs and
memory, pinned to the Ray node it was claimed for.

Run it as a Serve application (``POST /torc-service/v1/workflows/{id}/run_on_ray`` records
one, built by ``build_job_runner``) or in-process from the CLI::

    python -m deployments.jobs --url http://127.0.0.1:8080 --workflow-id 1
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import serve
from ray.serve import Application
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from deployments.contracts.app_args import JobRunnerArgs
from deployments.job_exec import (
    TorcApiError,
    TorcRest,
    completion_entry,
    failure_action,
    job_resources,
    now_iso,
    recover_orphans,
    run_command,
    run_recovery_script,
)

logger = logging.getLogger(__name__)
GIB = 1024**3
RUNTIME_GRACE_S = 15.0
PROGRESS_LOG_PERIOD_S = 5.0
ACTION_POLL_S = 1.0


@ray.remote(max_retries=0)
def _run_job_task(
    command: str,
    runtime_s: float,
    log_dir: str,
    tag: str,
    script: str | None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Ray task of one job: run its command with the runtime limit and its ``env``."""
    return run_command(
        command, runtime_s=runtime_s, log_dir=log_dir, tag=tag, invocation_script=script, env=env
    )


@dataclass
class RayNode:
    """A Ray node registered as a Torc compute node, with what this runner has placed on it."""

    ray_node_id: str
    hostname: str
    compute_node_id: int
    cpus: float
    gpus: float
    memory: float
    used: dict[str, float] = field(
        default_factory=lambda: {"num_cpus": 0.0, "num_gpus": 0.0, "memory": 0.0}
    )

    def free(self) -> dict[str, float]:
        """Capacity not taken by this runner's jobs."""
        return {
            "num_cpus": self.cpus - self.used["num_cpus"],
            "num_gpus": self.gpus - self.used["num_gpus"],
            "memory": self.memory - self.used["memory"],
        }


@dataclass
class Running:
    """A job in flight."""

    job: dict[str, Any]
    node: RayNode
    run_id: int
    resources: dict[str, float]
    started: float
    canceled_for_runtime: bool = False


class JobRunner:
    """Claims and runs a workflow's jobs on the Ray cluster until the workflow is complete."""

    def __init__(
        self,
        url: str,
        workflow_id: int,
        *,
        log_dir: str,
        poll_interval_s: float = 0.5,
        max_parallel_jobs: int | None = None,
        remove_app_when_done: bool = False,
        idle_timeout_s: float | None = None,
        recover_orphans: bool = False,
        orphan_max_attempts: int = 3,
    ) -> None:
        self.api = TorcRest(url)
        self.workflow_id = workflow_id
        self.log_dir = log_dir
        self.poll_interval_s = poll_interval_s
        self.max_parallel_jobs = max_parallel_jobs
        self.remove_app_when_done = remove_app_when_done
        self.idle_timeout_s = idle_timeout_s
        self.recover_orphans_on_start = recover_orphans
        self.orphan_max_attempts = orphan_max_attempts
        self.nodes: dict[str, RayNode] = {}
        self.running: dict[Any, Running] = {}
        self.rr_cache: dict[int, dict[str, float]] = {}
        self.stop_event = threading.Event()
        self.summary: dict[str, int] = {"completed": 0, "failed": 0, "terminated": 0}
        self.rules_cache: dict[int, list[dict[str, Any]]] = {}
        self.use_pending_failed = False
        self._last_progress_log = 0.0
        self.started = time.time()

    # -- compute nodes ---------------------------------------------------------------------
    def register_nodes(self) -> None:
        """Register every alive Ray node not yet known as a compute node of the workflow."""
        for info in ray.nodes():  # type: ignore[no-untyped-call]
            node_id = info["NodeID"]
            if not info.get("Alive") or node_id in self.nodes:
                continue
            res = info.get("Resources", {})
            body = {
                "workflow_id": self.workflow_id,
                "hostname": info.get("NodeManagerHostname")
                or info.get("NodeManagerAddress", node_id),
                "pid": os.getpid(),
                "start_time": now_iso(),
                "num_cpus": int(res.get("CPU", 0)),
                "memory_gb": float(res.get("memory", 0)) / GIB,
                "num_gpus": int(res.get("GPU", 0)),
                "num_nodes": 1,
                "compute_node_type": "ray",
                "is_active": True,
                "scheduler": {"ray_node_id": node_id, "node_ip": info.get("NodeManagerAddress")},
            }
            created = self.api.request("POST", "/compute_nodes", json=body)
            self.nodes[node_id] = RayNode(
                node_id,
                body["hostname"],
                created["id"],
                float(res.get("CPU", 0)),
                float(res.get("GPU", 0)),
                float(res.get("memory", 0)),
            )

    def deactivate_nodes(self) -> None:
        """Mark this runner's compute nodes inactive."""
        for node in self.nodes.values():
            try:
                self.api.request(
                    "PUT",
                    f"/compute_nodes/{node.compute_node_id}",
                    json={"is_active": False, "duration_seconds": time.time() - self.started},
                )
            except (TorcApiError, OSError) as exc:
                logger.warning(
                    "could not deactivate compute node %s: %s", node.compute_node_id, exc
                )

    def recover_orphans(self) -> dict[str, int]:
        """Re-run (or, past ``orphan_max_attempts``, terminate) jobs a dead runner left running."""
        ours = {n.compute_node_id for n in self.nodes.values()}
        return recover_orphans(self.api, self.workflow_id, ours, self.orphan_max_attempts)

    # -- claiming and launching --------------------------------------------------------------
    def _requirements(self, rr_id: int | None) -> dict[str, float]:
        if rr_id is None:
            return job_resources({})
        if rr_id not in self.rr_cache:
            self.rr_cache[rr_id] = job_resources(
                self.api.request("GET", f"/resource_requirements/{rr_id}")
            )
        return self.rr_cache[rr_id]

    def _slots_left(self) -> int:
        if self.max_parallel_jobs is None:
            return 10_000
        return self.max_parallel_jobs - len(self.running)

    def claim_and_launch(self, run_id: int, sort_method: str) -> int:
        """Claim jobs per node within its free capacity and start them; returns how many."""
        launched = 0
        for node in list(self.nodes.values()):
            free = node.free()
            slots = self._slots_left()
            if slots <= 0 or (free["num_cpus"] < 1 and free["num_gpus"] < 1):
                continue
            offer = {
                "id": node.compute_node_id,
                "num_cpus": math.floor(free["num_cpus"] + 1e-9),
                "num_gpus": math.floor(free["num_gpus"] + 1e-9),
                "memory_gb": max(free["memory"], 0.0) / GIB,
                "num_nodes": 1,
            }
            limit = max(1, min(slots, offer["num_cpus"] or 1))
            claimed = self.api.request(
                "POST",
                f"/workflows/{self.workflow_id}/claim_jobs_based_on_resources/{limit}",
                params={"sort_method": sort_method},
                json=offer,
            )["jobs"]
            for job in claimed:
                self.launch(job, node, run_id)
                launched += 1
        return launched

    def launch(self, job: dict[str, Any], node: RayNode, run_id: int) -> None:
        """Start a claimed job: ``start_job`` then a Ray task pinned to the node."""
        res = self._requirements(job.get("resource_requirements_id"))
        self.api.request("PUT", f"/jobs/{job['id']}/start_job/{run_id}/{node.compute_node_id}")
        tag = f"job_{job['id']}_run{run_id}_attempt{job.get('attempt_id', 1)}"
        options: dict[str, Any] = {
            "num_cpus": res["num_cpus"],
            "num_gpus": res["num_gpus"],
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node.ray_node_id, soft=False),
        }
        if res["memory"] > 0:
            options["memory"] = res["memory"]
        env = {
            **(job.get("env") or {}),
            "TORC_WORKFLOW_ID": str(self.workflow_id),
            "TORC_JOB_ID": str(job["id"]),
            "TORC_JOB_NAME": str(job["name"]),
            "TORC_API_URL": self.api.url,
            "TORC_ATTEMPT_ID": str(job.get("attempt_id", 1)),
        }
        ref = _run_job_task.options(**options).remote(
            job["command"], res["runtime_s"], self.log_dir, tag, job.get("invocation_script"), env
        )
        for key in node.used:
            node.used[key] += res[key]
        self.running[ref] = Running(job, node, run_id, res, time.monotonic())

    # -- completion --------------------------------------------------------------------------
    def collect(self, timeout_s: float) -> int:
        """Wait for finished tasks, complete their jobs; returns how many finished."""
        if not self.running:
            return 0
        self._enforce_runtime()
        done, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=timeout_s)
        finished = []
        for ref in done:
            item = self.running.pop(ref)
            for key in item.node.used:
                item.node.used[key] -= item.resources[key]
            finished.append((item, self._outcome(ref, item)))
        if finished:
            self._complete(finished)
            self._log_progress()
        return len(done)

    def _log_progress(self) -> None:
        """Log done/total at most every few seconds.

        The same ratio is the ``torc_workflow_progress_ratio`` metric on the platform's /metrics.
        """
        now = time.monotonic()
        if now - self._last_progress_log < PROGRESS_LOG_PERIOD_S:
            return
        self._last_progress_log = now
        try:
            total = self.api.request(
                "GET", "/jobs", params={"workflow_id": self.workflow_id, "limit": 1}
            )
            completed = self.api.request(
                "GET",
                "/jobs",
                params={"workflow_id": self.workflow_id, "limit": 1, "status": "completed"},
            )
        except TorcApiError as exc:
            logger.warning("progress lookup failed: %s", exc.message)
            return
        logger.info(
            "workflow %s progress: %s/%s jobs completed; this runner: %s, running now: %d",
            self.workflow_id,
            completed.get("total_count", "?"),
            total.get("total_count", "?"),
            dict(self.summary),
            len(self.running),
        )

    def _enforce_runtime(self) -> None:
        """Backstop for a task that outlives its runtime (e.g. a hung worker): cancel it."""
        now = time.monotonic()
        for ref, item in self.running.items():
            limit = item.resources["runtime_s"] + RUNTIME_GRACE_S
            if not item.canceled_for_runtime and now - item.started > limit:
                item.canceled_for_runtime = True
                ray.cancel(ref, force=True)

    def _outcome(self, ref: Any, item: Running) -> dict[str, Any]:
        try:
            result: dict[str, Any] = ray.get(ref)
            return result
        except Exception as exc:
            status = "terminated" if item.canceled_for_runtime else "failed"
            return {
                "return_code": -1,
                "status": status,
                "exec_time_minutes": (time.monotonic() - item.started) / 60.0,
                "completion_time": now_iso(),
                "stdout": "",
                "stderr": f"{type(exc).__name__}: {exc}"[:4000],
            }

    def run_actions(self, *, final: bool = False) -> int:
        """Claim and run the workflow's pending ``run_commands`` actions; returns how many ran.

        Other action types (``schedule_nodes``...) are left for other workers. The worker
        triggers are this runner's: ``on_worker_complete`` actions run only when it stops
        (``final``).
        """
        types = [
            "on_workflow_start",
            "on_jobs_ready",
            "on_jobs_complete",
            "on_workflow_complete",
            "on_worker_start",
        ]
        if final:
            types.append("on_worker_complete")
        try:
            pending = self.api.request(
                "GET",
                f"/workflows/{self.workflow_id}/actions/pending",
                params={"trigger_type": types},
            )
        except TorcApiError as exc:
            logger.warning("pending actions lookup failed: %s", exc.message)
            return 0
        node_id = next((n.compute_node_id for n in self.nodes.values()), None)
        ran = 0
        for action in pending:
            if action["action_type"] != "run_commands":
                continue
            try:
                self.api.request(
                    "POST",
                    f"/workflows/{self.workflow_id}/actions/{action['id']}/claim",
                    json={"compute_node_id": node_id},
                )
            except TorcApiError:
                continue  # another worker claimed it
            env = {
                "TORC_WORKFLOW_ID": str(self.workflow_id),
                "TORC_API_URL": self.api.url,
                "TORC_OUTPUT_DIR": self.log_dir,
                "TORC_ACTION_ID": str(action["id"]),
                "TORC_TRIGGER_TYPE": action["trigger_type"],
            }
            for command in (action.get("action_config") or {}).get("commands", []):
                run_recovery_script(command, env)
            ran += 1
        self.summary["actions"] = self.summary.get("actions", 0) + ran
        return ran

    def _rules(self, handler_id: int) -> list[dict[str, Any]]:
        """A failure handler's rules (fetched once per handler)."""
        if handler_id not in self.rules_cache:
            try:
                handler = self.api.request("GET", f"/failure_handlers/{handler_id}")
                self.rules_cache[handler_id] = list(json.loads(handler["rules"]))
            except (TorcApiError, ValueError, TypeError) as exc:
                logger.warning("failure handler %s unusable: %s", handler_id, exc)
                self.rules_cache[handler_id] = []
        return self.rules_cache[handler_id]

    def _on_failure(self, item: Running, outcome: dict[str, Any]) -> str | None:
        """Apply the job's failure handler to a failed or terminated attempt.

        A matching rule with retries left: the attempt's result is stored, the job goes back
        to ``ready`` (``retry``, ``attempt_id + 1``) and the rule's recovery script runs.
        Otherwise the final status: ``failed`` when retries are exhausted, ``pending_failed``
        for an unmatched failure when the workflow asks for it, else the attempt's status.

        Returns:
            The status to complete the job with, or None when it was retried.
        """
        job, rc = item.job, int(outcome["return_code"])
        attempt = int(job.get("attempt_id") or 1)
        handler_id = job.get("failure_handler_id")
        rules = self._rules(int(handler_id)) if handler_id is not None else []
        action, rule = failure_action(rules, rc, attempt) if rules else ("no_match", None)
        if action == "exhausted":
            return "failed"
        if action == "no_match" or rule is None:
            if outcome["status"] == "failed" and self.use_pending_failed:
                return "pending_failed"
            return str(outcome["status"])
        max_retries = int(rule.get("max_retries", 3))
        result = completion_entry(
            self.workflow_id, job["id"], item.run_id, item.node.compute_node_id, outcome
        )["result"]
        result["attempt_id"] = attempt
        try:
            # One result row per attempt; retry instead of complete_job, so dependents wait.
            self.api.request("POST", "/results", json=result)
            self.api.request(
                "POST",
                f"/jobs/{job['id']}/retry/{item.run_id}",
                params={"max_retries": max_retries},
            )
        except TorcApiError as exc:
            logger.warning("retry of job %s refused: %s", job["id"], exc.message)
            return "failed"
        self.summary["retried"] = self.summary.get("retried", 0) + 1
        script = rule.get("recovery_script")
        if script:
            run_recovery_script(
                script,
                {
                    "TORC_WORKFLOW_ID": str(self.workflow_id),
                    "TORC_JOB_ID": str(job["id"]),
                    "TORC_JOB_NAME": str(job["name"]),
                    "TORC_API_URL": self.api.url,
                    "TORC_OUTPUT_DIR": self.log_dir,
                    "TORC_ATTEMPT_ID": str(attempt),
                    "TORC_RETURN_CODE": str(rc),
                },
            )
        return None

    def _complete(self, finished: list[tuple[Running, dict[str, Any]]]) -> None:
        """Record finished jobs with one ``batch_complete_jobs`` call (retries first)."""
        kept = []
        for item, outcome in finished:
            if outcome["status"] in ("failed", "terminated"):
                status = self._on_failure(item, outcome)
                if status is None:
                    continue
                outcome = {**outcome, "status": status}
            kept.append((item, outcome))
        if not kept:
            return
        finished = kept
        entries = [
            completion_entry(
                self.workflow_id, item.job["id"], item.run_id, item.node.compute_node_id, outcome
            )
            for item, outcome in finished
        ]
        try:
            answer = self.api.request(
                "POST",
                f"/workflows/{self.workflow_id}/batch_complete_jobs",
                json={"completions": entries},
            )
        except TorcApiError as exc:
            logger.warning("batch_complete_jobs refused: %s", exc.message)
            return
        status_of = {e["job_id"]: e["status"] for e in entries}
        for job_id in answer["completed"]:
            self.summary[status_of[job_id]] = self.summary.get(status_of[job_id], 0) + 1
        for error in answer["errors"]:
            # A canceled workflow or a reset job refuses the completion: nothing to record.
            logger.warning("completion of job %s refused: %s", error["job_id"], error["message"])

    def cancel_all(self) -> None:
        """Kill every running task and record the jobs as terminated."""
        for ref in list(self.running):
            ray.cancel(ref, force=True)
            self.running[ref].canceled_for_runtime = True
        while self.running:
            self.collect(1.0)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> dict[str, int]:
        """Loop until the workflow is complete (or canceled, or idle too long); returns counts."""
        workflow = self.api.request("GET", f"/workflows/{self.workflow_id}")
        self.use_pending_failed = bool(workflow.get("use_pending_failed"))
        sort_method = workflow.get("jobs_sort_method", "gpus_runtime_memory")
        idle_limit = self.idle_timeout_s or float(
            workflow.get("compute_node_wait_for_new_jobs_seconds", 90)
        )
        self.register_nodes()
        if self.recover_orphans_on_start:
            self.recover_orphans()
        last_refresh = last_activity = time.monotonic()
        last_actions = 0.0
        try:
            while not self.stop_event.is_set():
                if time.monotonic() - last_actions > ACTION_POLL_S:
                    self.run_actions()
                    last_actions = time.monotonic()
                complete = self.api.request("GET", f"/workflows/{self.workflow_id}/is_complete")
                if complete["is_canceled"]:
                    self.cancel_all()
                    break
                if complete["is_complete"] and not self.running:
                    break
                if time.monotonic() - last_refresh > 10:
                    self.register_nodes()
                    last_refresh = time.monotonic()
                run_id = self.api.request("GET", f"/workflows/{self.workflow_id}/status")["run_id"]
                activity = self.claim_and_launch(run_id, sort_method)
                activity += self.collect(self.poll_interval_s if self.running else 0)
                if activity or self.running:
                    last_activity = time.monotonic()
                elif time.monotonic() - last_activity > idle_limit:
                    logger.info(
                        "workflow %s: no ready jobs for %.0fs, exiting",
                        self.workflow_id,
                        idle_limit,
                    )
                    break
                else:
                    time.sleep(self.poll_interval_s)
            if self.stop_event.is_set():
                self.cancel_all()
            else:
                self.run_actions(final=True)
        finally:
            self.deactivate_nodes()
        if self.remove_app_when_done and not self.stop_event.is_set():
            try:
                self.api.request("DELETE", f"/workflows/{self.workflow_id}/run_on_ray")
            except TorcApiError as exc:
                logger.warning("could not remove the runner app: %s", exc.message)
        self.api.close()
        return dict(self.summary)


@serve.deployment(
    name="TorcJobRunner", num_replicas=1, max_ongoing_requests=16, ray_actor_options={"num_cpus": 0}
)
class JobRunnerDeployment:
    """Runs one workflow's ``JobRunner`` loop in a background thread of the replica."""

    def __init__(self, args: JobRunnerArgs | dict[str, Any]) -> None:
        parsed = JobRunnerArgs.parse(args)
        self.runner = JobRunner(
            parsed.url,
            parsed.workflow_id,
            log_dir=parsed.log_dir,
            poll_interval_s=parsed.poll_interval_s,
            max_parallel_jobs=parsed.max_parallel_jobs,
            remove_app_when_done=parsed.remove_app_when_done,
            recover_orphans=True,
        )
        self.result: dict[str, int] | None = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._loop, name="torc-runner", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            self.result = self.runner.run()
        except Exception as exc:
            logger.exception("torc runner for workflow %s failed", self.runner.workflow_id)
            self.error = f"{type(exc).__name__}: {exc}"

    def status(self) -> dict[str, Any]:
        """Whether the loop still runs, its counts, and its error if it died."""
        return {
            "alive": self.thread.is_alive(),
            "running_jobs": len(self.runner.running),
            "summary": self.runner.summary,
            "error": self.error,
        }

    def __del__(self) -> None:
        self.runner.stop_event.set()


def build_job_runner(args: JobRunnerArgs | dict[str, Any]) -> Application:
    """Builder of a workflow's runner application (no HTTP route: ``route_prefix`` None).

    Args:
        args: :class:`JobRunnerArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = JobRunnerArgs.parse(args)
    return JobRunnerDeployment.bind(parsed)  # type: ignore[attr-defined,no-any-return]


def main(argv: list[str] | None = None) -> int:
    """CLI: run a workflow's jobs on the Ray cluster from this process."""
    parser = argparse.ArgumentParser(prog="python -m deployments.jobs", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Control plane URL.")
    parser.add_argument("--workflow-id", type=int, required=True)
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS", "auto"))
    parser.add_argument("--log-dir", default="./torc_logs")
    parser.add_argument("--poll-interval-s", type=float, default=0.5)
    parser.add_argument("--max-parallel-jobs", type=int, default=None)
    parser.add_argument("--idle-timeout-s", type=float, default=None)
    parser.add_argument(
        "--recover-orphans",
        action="store_true",
        help="Re-run jobs left running by a dead runner, up to 3 attempts per job (only if no "
        "other runner is active).",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    ray.init(address=args.ray_address, log_to_driver=False)
    runner = JobRunner(
        args.url,
        args.workflow_id,
        log_dir=os.path.abspath(args.log_dir),
        poll_interval_s=args.poll_interval_s,
        max_parallel_jobs=args.max_parallel_jobs,
        idle_timeout_s=args.idle_timeout_s,
        recover_orphans=args.recover_orphans,
    )
    summary = runner.run()
    print(summary)  # noqa: T201 - CLI output
    return 0 if not summary.get("failed") and not summary.get("terminated") else 1


if __name__ == "__main__":
    raise SystemExit(main())
