"""Completing jobs in plain SQL, one or a batch.

Dependents are unblocked (or canceled, cascading) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import DomainError, NotFoundError, ValidationFailedError
from control_plane.services.torc.actions import refresh_triggers
from control_plane.services.torc.common import job_event, now_iso
from control_plane.services.torc.job_rows import JobRow, job_columns
from control_plane.services.torc.results import _tail
from control_plane.services.torc.sql import Sql
from control_plane.services.torc.state_machine import (
    FAILURES,
    FINISHED,
    JobEvent,
    JobStatus,
    can,
    source,
    target,
    targets,
)
from control_plane.services.torc.txn import begin_write

_BLOCKED = source(JobEvent.DEPENDENCIES_FINISHED)
_CANCELED = target(JobEvent.DEPENDENCY_FAILED)


class CompletionPath:
    """Records job completions for runners."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def complete_many(
        self, entries: Sequence[dict[str, Any]], workflow_id: int | None = None
    ) -> tuple[list[dict[str, Any]], list[tuple[int, DomainError]]]:
        """Complete jobs in one transaction; invalid entries are reported, not written.

        Each entry has ``job_id``, ``status``, ``run_id`` and ``result`` (torc result fields,
        or the seed's ``exit_code``/``stdout``/``stderr``).

        Returns:
            (completed jobs, [(job_id, error)]).
        """
        sql = Sql(self.session)
        begin_write(self.session)
        params: dict[str, Any] = {}
        keys = sql.expand("j", sorted({int(e["job_id"]) for e in entries}), params)
        lock = "" if sql.sqlite else " ORDER BY j.id FOR UPDATE OF j"
        jobs = {
            r.id: r
            for r in sql.rows(
                # The same read tells whether this attempt already has a result (results are
                # unique per job, run and attempt) and whether the workflow has actions to
                # count, so neither costs a query of its own.
                f"SELECT {job_columns('j')}, w.run_id, "
                "(SELECT r.id FROM torc_results r WHERE r.job_id = j.id "
                "AND r.run_id = w.run_id AND r.attempt_id = j.attempt_id) AS stored_result, "
                "EXISTS (SELECT 1 FROM torc_workflow_actions a WHERE a.workflow_id = j.workflow_id "
                "AND a.trigger_count < a.required_triggers) AS has_actions "
                "FROM torc_jobs j JOIN torc_workflows w ON w.id = j.workflow_id "
                f"WHERE j.id IN ({keys}){lock}",
                params,
            )
        }
        nodes = {
            int(e["result"]["compute_node_id"])
            for e in entries
            if e["result"].get("compute_node_id") is not None
        }
        # A job's active node was checked by start_job: only other nodes need a lookup.
        known_nodes: set[int] = {
            r.active_compute_node_id for r in jobs.values() if r.active_compute_node_id is not None
        }
        nodes -= known_nodes
        if nodes:
            params = {}
            known_nodes |= {
                r.id
                for r in sql.rows(
                    "SELECT id FROM torc_compute_nodes "
                    f"WHERE id IN ({sql.expand('n', nodes, params)})",
                    params,
                )
            }
        done: list[dict[str, Any]] = []
        errors: list[tuple[int, DomainError]] = []
        seen: set[int] = set()
        events: dict[int, list[dict[str, Any]]] = defaultdict(list)
        finished: dict[int, list[int]] = defaultdict(list)
        rows: list[dict[str, Any]] = []
        for entry in entries:
            job_id = int(entry["job_id"])
            try:
                job = self._check(entry, jobs.get(job_id), workflow_id, known_nodes, seen)
            except DomainError as exc:
                errors.append((job_id, exc))
                continue
            status, result = JobStatus(entry["status"]), entry["result"]
            attempt = int(result.get("attempt_id") or job.attempt_id)
            if self._result_exists(sql, job, attempt):
                errors.append(
                    (
                        job_id,
                        ValidationFailedError(
                            f"A result of job {job_id} for run {entry['run_id']} attempt "
                            f"{attempt} already exists",
                            code="result_exists",
                        ),
                    )
                )
                continue
            seen.add(job_id)
            rc = result.get("return_code", result.get("exit_code"))
            values = {
                "w": job.workflow_id,
                "j": job_id,
                "run": int(entry["run_id"]),
                "a": attempt,
                "n": result.get("compute_node_id", job.active_compute_node_id),
                "rc": int(rc if rc is not None else (0 if status == JobStatus.COMPLETED else 1)),
                "et": float(result.get("exec_time_minutes") or 0.0),
                "ct": result.get("completion_time") or now_iso(),
                "s": status.value,
                "pm": result.get("peak_memory_bytes"),
                "am": result.get("avg_memory_bytes"),
                "pc": result.get("peak_cpu_percent"),
                "ac": result.get("avg_cpu_percent"),
                "so": _tail(result.get("stdout")),
                "se": _tail(result.get("stderr")),
            }
            rows.append(values)
            events[job.workflow_id].append(
                job_event(job_id, job.name, job.status, status, return_code=values["rc"])
            )
            if status in FINISHED:
                finished[job.workflow_id].append(job_id)
            done.append(
                JobRow.of(job)
                ._replace(status=status, active_compute_node_id=None, start_time=None)
                .wire()
            )
        if rows:
            self._write_results(sql, rows)
        for wf, ids in finished.items():
            events[wf] += self._unblock(sql, ids)
        for wf, datas in events.items():
            sql.events(wf, datas)
        for wf in {int(r["w"]) for r in rows if jobs[int(r["j"])].has_actions}:
            refresh_triggers(self.session, wf)
        self.session.commit()
        return done, errors

    @staticmethod
    def _result_exists(sql: Sql, job: Any, attempt: int) -> bool:
        """Whether the job's current run already has a result for ``attempt``."""
        if attempt == job.attempt_id:
            return job.stored_result is not None
        found = sql.rows(
            "SELECT id FROM torc_results WHERE job_id = :j AND run_id = :r AND attempt_id = :a",
            {"j": job.id, "r": job.run_id, "a": attempt},
        )
        return bool(found)

    @staticmethod
    def _write_results(sql: Sql, rows: list[dict[str, Any]]) -> None:
        """One multi-row INSERT of the results, one UPDATE of the jobs per final status."""
        columns = (
            "w",
            "j",
            "run",
            "a",
            "n",
            "rc",
            "et",
            "ct",
            "s",
            "pm",
            "am",
            "pc",
            "ac",
            "so",
            "se",
        )
        params: dict[str, Any] = {}
        tuples = []
        for i, row in enumerate(rows):
            params.update({f"{c}{i}": row[c] for c in columns})
            tuples.append("(" + ", ".join(f":{c}{i}" for c in columns) + ")")
        result_ids = {
            r.job_id: r.id
            for r in sql.rows(
                "INSERT INTO torc_results (workflow_id, job_id, run_id, attempt_id, "
                "compute_node_id, return_code, exec_time_minutes, completion_time, status, "
                "peak_memory_bytes, avg_memory_bytes, peak_cpu_percent, avg_cpu_percent, stdout, "
                f"stderr) VALUES {', '.join(tuples)} RETURNING id, job_id",
                params,
            )
        }
        by_status: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            by_status[row["s"]].append(row["j"])
        for status, job_ids in by_status.items():
            params = {"s": status}
            whens = []
            for i, job_id in enumerate(job_ids):
                params[f"k{i}"], params[f"r{i}"] = job_id, result_ids[job_id]
                whens.append(f"WHEN :k{i} THEN :r{i}")
            sql.run(
                "UPDATE torc_jobs SET status = :s, active_compute_node_id = NULL, "
                "start_time = NULL, "
                f"current_result_id = CASE id {' '.join(whens)} END "
                f"WHERE id IN ({sql.expand('u', job_ids, params)})",
                params,
            )

    @staticmethod
    def _check(
        entry: dict[str, Any], job: Any, workflow_id: int | None, nodes: set[int], seen: set[int]
    ) -> Any:
        job_id, status = int(entry["job_id"]), entry["status"]
        if job is None:
            raise NotFoundError(f"Job not found with ID: {job_id}", code="job_not_found")
        if workflow_id is not None and job.workflow_id != workflow_id:
            raise ValidationFailedError(f"Job {job_id} does not belong to workflow {workflow_id}")
        if status not in targets(JobEvent.COMPLETE):
            raise ValidationFailedError(
                f"Got status '{status}' for complete_job; it must be one of "
                f"{', '.join(sorted(targets(JobEvent.COMPLETE)))}",
                code="invalid_transition",
            )
        if job_id in seen or not can(JobEvent.COMPLETE, job.status):
            raise ValidationFailedError(
                f"Job {job_id} is already complete with status "
                f"{job.status if job_id not in seen else JobStatus.COMPLETED}",
                code="job_already_complete",
            )
        result = entry["result"]
        if result.get("job_id") not in (None, job_id):
            raise ValidationFailedError(
                f"Result job_id {result['job_id']} does not match job {job_id}"
            )
        if int(entry["run_id"]) != job.run_id:
            raise ValidationFailedError(
                f"Run ID mismatch: provided {entry['run_id']} but workflow status has {job.run_id}",
                code="run_id_mismatch",
            )
        node = result.get("compute_node_id")
        if node is not None and int(node) not in nodes:
            raise NotFoundError(
                f"Compute node not found with ID: {node}", code="compute_node_not_found"
            )
        return job

    def _unblock(self, sql: Sql, finished: list[int]) -> list[dict[str, Any]]:
        """Blocked dependents whose dependencies all finished become ready or canceled."""
        events: list[dict[str, Any]] = []
        frontier = finished
        lock = "" if sql.sqlite else " FOR UPDATE"
        while frontier:
            params: dict[str, Any] = {"blocked": _BLOCKED.value}
            keys = sql.expand("f", frontier, params)
            dependents = {
                r.id: r
                for r in sql.rows(
                    "SELECT id, name, cancel_on_blocking_job_failure FROM torc_jobs "
                    "WHERE status = :blocked AND id IN (SELECT job_id FROM torc_job_dependencies "
                    f"WHERE depends_on_job_id IN ({keys})) "
                    f"ORDER BY id{lock}",
                    params,
                )
            }
            if not dependents:
                break
            params = {}
            keys = sql.expand("d", dependents, params)
            states: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
            for dep in sql.rows(
                "SELECT d.job_id, dep.status, r.return_code FROM torc_job_dependencies d "
                "JOIN torc_jobs dep ON dep.id = d.depends_on_job_id "
                "LEFT JOIN torc_results r ON r.id = dep.current_result_id "
                f"WHERE d.job_id IN ({keys})",
                params,
            ):
                states[dep.job_id].append((dep.status, dep.return_code))
            moves: dict[JobStatus, list[int]] = defaultdict(list)
            for job_id, row in dependents.items():
                deps = states[job_id]
                if any(s not in FINISHED for s, _ in deps):
                    continue
                failed = any(
                    s in FAILURES and (s == JobStatus.CANCELED or rc != 0) for s, rc in deps
                )
                event = (
                    JobEvent.DEPENDENCY_FAILED
                    if failed and row.cancel_on_blocking_job_failure
                    else JobEvent.DEPENDENCIES_FINISHED
                )
                moves[target(event)].append(job_id)
                events.append(job_event(job_id, row.name, _BLOCKED, target(event)))
            for status, ids in moves.items():
                params = {"s": status.value}
                sql.run(
                    "UPDATE torc_jobs SET status = :s "
                    f"WHERE id IN ({sql.expand('m', ids, params)})",
                    params,
                )
            frontier = moves.get(_CANCELED, [])
        return events
