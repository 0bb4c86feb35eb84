"""Completing jobs in plain SQL, one or a batch.

Dependents are unblocked (or canceled, cascading) in the same transaction.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import DomainError, NotFoundError, ValidationFailedError
from control_plane.services.torc.actions import refresh_triggers
from control_plane.services.torc.common import job_event, now_iso, now_ms
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
_READY = target(JobEvent.DEPENDENCIES_FINISHED)
_CANCELED = target(JobEvent.DEPENDENCY_FAILED)
_NODE_PROBES = 4
_RESULT_COLUMNS = (
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
_INSERT_RESULTS = (
    "INSERT INTO torc_results (workflow_id, job_id, run_id, attempt_id, compute_node_id, "
    "return_code, exec_time_minutes, completion_time, status, peak_memory_bytes, "
    "avg_memory_bytes, peak_cpu_percent, avg_cpu_percent, stdout, stderr) VALUES "
)


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
        params: dict[str, Any] = {"blocked": _BLOCKED.value}
        job_ids = sorted({int(e["job_id"]) for e in entries})
        keys = sql.expand("j", job_ids, params)
        nodes = {
            int(e["result"]["compute_node_id"])
            for e in entries
            if e["result"].get("compute_node_id") is not None
        }
        # The nodes the results name are looked up by the same read (a few; more: one query).
        probed = sorted(nodes)[:_NODE_PROBES]
        probes = "".join(
            f", (SELECT id FROM torc_compute_nodes WHERE id = :n{i}) AS node_{i}"
            for i in range(len(probed))
        )
        params.update({f"n{i}": n for i, n in enumerate(probed)})
        statements: list[str] = []
        if not sql.sqlite:
            # Lock the blocked dependents first, in the same round trip: a concurrent
            # completion of another of their dependencies then waits for this commit, and its
            # unblocking (a later statement, a later snapshot) sees this job finished.
            statements.append(
                "SELECT id FROM torc_jobs WHERE status = :blocked AND id IN "
                "(SELECT job_id FROM torc_job_dependencies "
                f"WHERE depends_on_job_id IN ({keys})) ORDER BY id FOR UPDATE"
            )
        statements.append(
            # The same read tells whether this attempt already has a result (results are
            # unique per job, run and attempt) and whether the workflow has actions to
            # count, so neither costs a query of its own.
            f"SELECT {job_columns('j')}, w.run_id, "
            "(SELECT r.id FROM torc_results r WHERE r.job_id = j.id "
            "AND r.run_id = w.run_id AND r.attempt_id = j.attempt_id) AS stored_result, "
            "EXISTS (SELECT 1 FROM torc_workflow_actions a WHERE a.workflow_id = j.workflow_id "
            f"AND a.trigger_count < a.required_triggers) AS has_actions{probes} "
            "FROM torc_jobs j JOIN torc_workflows w ON w.id = j.workflow_id "
            f"WHERE j.id IN ({keys})" + ("" if sql.sqlite else " ORDER BY j.id FOR UPDATE OF j")
        )
        read = sql.rows(statements[0] if sql.sqlite else statements, params)
        jobs = {r.id: r for r in read}
        # A job's active node was checked by start_job: only other nodes need a lookup.
        known_nodes: set[int] = {
            r.active_compute_node_id for r in jobs.values() if r.active_compute_node_id is not None
        }
        if read:
            first = read[0]
            known_nodes |= {
                n for i, n in enumerate(probed) if getattr(first, f"node_{i}") is not None
            }
            nodes -= set(probed)
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
        if rows and not sql.sqlite:
            self._write_and_unblock(sql, rows, events, finished)
        elif rows:
            self._write_results(sql, rows)
            for wf, ids in finished.items():
                events[wf] += self._unblock(sql, ids)
            for wf, datas in events.items():
                sql.events(wf, datas)
        for wf in {int(r["w"]) for r in rows if jobs[int(r["j"])].has_actions}:
            refresh_triggers(self.session, wf)
        self.session.commit()
        return done, errors

    def _write_and_unblock(
        self,
        sql: Sql,
        rows: list[dict[str, Any]],
        events: dict[int, list[dict[str, Any]]],
        finished: dict[int, list[int]],
    ) -> None:
        """PostgreSQL: results, job statuses, events and unblocking in one round trip.

        The first statement inserts the results, points the jobs at them and records the
        completion events (data-modifying CTEs); the second, which reads a later snapshot
        and so sees the first's statuses, moves the blocked dependents whose dependencies
        all finished and records their events. A dependent canceled by a failure cascades
        through ``_unblock``.
        """
        params: dict[str, Any] = {"t": now_ms()}
        tuples = []
        for i, row in enumerate(rows):
            params.update({f"{c}{i}": row[c] for c in _RESULT_COLUMNS})
            tuples.append("(" + ", ".join(f":{c}{i}" for c in _RESULT_COLUMNS) + ")")
        values = []
        for wf, datas in events.items():
            for i, data in enumerate(datas):
                params[f"ew{wf}_{i}"], params[f"ed{wf}_{i}"] = wf, json.dumps(data)
                values.append(f"(:ew{wf}_{i}, :t, :ed{wf}_{i})")
        statements = [
            f"WITH ins AS ({_INSERT_RESULTS}{', '.join(tuples)} RETURNING id, job_id, status), "
            "upd AS (UPDATE torc_jobs SET status = ins.status, active_compute_node_id = NULL, "
            "start_time = NULL, current_result_id = ins.id FROM ins "
            "WHERE torc_jobs.id = ins.job_id RETURNING torc_jobs.id), "
            "ev AS (INSERT INTO torc_events (workflow_id, timestamp, data) "
            f"VALUES {', '.join(values)} RETURNING id) "
            "SELECT (SELECT count(*) FROM upd) AS jobs, (SELECT count(*) FROM ev) AS events"
        ]
        done_ids = [j for ids in finished.values() for j in ids]
        if done_ids:
            params.update(
                {
                    "blocked": _BLOCKED.value,
                    "ready": _READY.value,
                    "canceled": _CANCELED.value,
                }
            )
            finished_in = ", ".join(f"'{s.value}'" for s in sorted(FINISHED))
            failures_in = ", ".join(f"'{s.value}'" for s in sorted(FAILURES))
            statements.append(
                "WITH s AS (SELECT d.job_id, "
                f"MIN(CASE WHEN dep.status IN ({finished_in}) THEN 1 ELSE 0 END) AS done, "
                "MAX(CASE WHEN dep.status = :canceled OR "
                f"(dep.status IN ({failures_in}) AND "
                "(r.return_code IS NULL OR r.return_code <> 0)) THEN 1 ELSE 0 END) AS failed "
                "FROM torc_job_dependencies d JOIN torc_jobs dep ON dep.id = d.depends_on_job_id "
                "LEFT JOIN torc_results r ON r.id = dep.current_result_id "
                "WHERE d.job_id IN (SELECT job_id FROM torc_job_dependencies "
                f"WHERE depends_on_job_id IN ({sql.expand('f', done_ids, params)})) "
                "GROUP BY d.job_id), "
                "moved AS (UPDATE torc_jobs SET status = CASE WHEN s.failed = 1 AND "
                "torc_jobs.cancel_on_blocking_job_failure THEN :canceled ELSE :ready END "
                "FROM s WHERE torc_jobs.id = s.job_id AND s.done = 1 "
                "AND torc_jobs.status = :blocked "
                "RETURNING torc_jobs.id, torc_jobs.workflow_id, torc_jobs.name, torc_jobs.status), "
                "ev AS (INSERT INTO torc_events (workflow_id, timestamp, data) "
                "SELECT m.workflow_id, :t, json_build_object('category', 'job', 'event_type', "
                "'job_' || m.status, 'job_id', m.id, 'job_name', m.name, 'from_status', "
                "CAST(:blocked AS text), 'to_status', m.status) "
                "FROM (SELECT * FROM moved ORDER BY id) m "
                "RETURNING id) "
                "SELECT id, workflow_id, status FROM moved"
            )
        moved = sql.rows(statements, params) if done_ids else []
        if not done_ids:
            sql.run(statements, params)
        canceled: dict[int, list[int]] = defaultdict(list)
        for row in moved:
            if row.status == _CANCELED.value:
                canceled[row.workflow_id].append(row.id)
        for wf, ids in canceled.items():
            sql.events(wf, self._unblock(sql, sorted(ids)))

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
        columns = _RESULT_COLUMNS
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
