"""Claiming ready jobs in plain SQL: ``ready -> pending``, atomically on both databases.

The ``UPDATE`` is conditional (``... WHERE status = 'ready'``), so two runners never get the same
job. PostgreSQL picks rows with ``FOR UPDATE SKIP LOCKED`` so concurrent claimers take different
rows without waiting; SQLite serialises writers with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import NotFoundError
from control_plane.services.torc.common import check_limit, job_event, now_ms
from control_plane.services.torc.job_rows import JOB_COLUMNS, JobRow, job_columns
from control_plane.services.torc.packing import ORDER_BY, memory_cap, pack, remaining
from control_plane.services.torc.sql import Sql
from control_plane.services.torc.state_machine import JobEvent, source, target
from control_plane.services.torc.txn import begin_write

CANCELED_REASON = "Workflow is canceled"
_FROM, _TO = source(JobEvent.CLAIM), target(JobEvent.CLAIM)
# What a job without resource requirements needs (torc's defaults).
_CPUS = "COALESCE(rr.num_cpus, 1)"
_GPUS = "COALESCE(rr.num_gpus, 0)"
_NODES = "COALESCE(rr.num_nodes, 1)"
_MEMORY = f"COALESCE(rr.memory_bytes, {1024 * 1024})"
_RUNTIME = "COALESCE(rr.runtime_s, 60.0)"


def _ids(joined: str | None) -> list[int]:
    """Ids from a ``string_agg`` of them."""
    return [int(x) for x in joined.split(",")] if joined else []


class HotPath:
    """Claims for runners: one workflow read, then one write transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _workflow(self, sql: Sql, workflow_id: int) -> Any:
        rows = sql.rows(
            "SELECT id, run_id, is_canceled FROM torc_workflows WHERE id = :w", {"w": workflow_id}
        )
        if not rows:
            raise NotFoundError(
                f"Workflow not found with ID: {workflow_id}", code="workflow_not_found"
            )
        return rows[0]

    def claim_next(self, workflow_id: int, limit: int) -> list[dict[str, Any]]:
        """Claim up to ``limit`` ready jobs (highest priority, then lowest ids, first).

        Raises:
            NotFoundError: unknown workflow.
        """
        sql = Sql(self.session)
        if limit <= 0:
            self._workflow(sql, workflow_id)
            return []
        if not sql.sqlite:
            return self._claim_next_pg(sql, workflow_id, limit)
        workflow = self._workflow(sql, workflow_id)
        if workflow.is_canceled:
            return []
        begin_write(self.session)
        pick = (
            "SELECT id FROM torc_jobs WHERE workflow_id = :w AND status = :src "
            "ORDER BY priority DESC, id LIMIT :k"
        )
        if sql.sqlite:
            statement = (
                "UPDATE torc_jobs SET status = :dst "
                f"WHERE status = :src AND id IN ({pick}) RETURNING {JOB_COLUMNS}"
            )
        else:
            # A CTE, not IN (...): PostgreSQL may re-run an IN subquery with LIMIT per row.
            statement = (
                f"WITH picked AS ({pick} FOR UPDATE SKIP LOCKED) "
                "UPDATE torc_jobs SET status = :dst FROM picked "
                f"WHERE torc_jobs.id = picked.id RETURNING {job_columns('torc_jobs')}"
            )
        params = {"w": workflow_id, "k": limit, "src": _FROM.value, "dst": _TO.value}
        return self._finish_claim(sql, workflow_id, sql.rows(statement, params))

    def _claim_next_pg(self, sql: Sql, workflow_id: int, limit: int) -> list[dict[str, Any]]:
        """PostgreSQL: pick, claim, record events and read output links in one statement.

        The workflow is read only when nothing was claimed (unknown: 404; canceled: none).
        """
        params = {
            "w": workflow_id,
            "k": limit,
            "src": _FROM.value,
            "dst": _TO.value,
            "t": now_ms(),
            "event": f"job_{_TO.value}",
        }
        rows = sql.rows(
            "WITH picked AS (SELECT id FROM torc_jobs WHERE workflow_id = :w AND status = :src "
            "AND EXISTS (SELECT 1 FROM torc_workflows WHERE id = :w AND NOT is_canceled) "
            "ORDER BY priority DESC, id LIMIT :k FOR UPDATE SKIP LOCKED), "
            "claimed AS (UPDATE torc_jobs SET status = :dst FROM picked "
            f"WHERE torc_jobs.id = picked.id RETURNING {job_columns('torc_jobs')}), "
            "ev AS (INSERT INTO torc_events (workflow_id, timestamp, data) "
            # The casts type the event's strings, which json_build_object does not.
            "SELECT :w, :t, json_build_object('category', 'job', "
            "'event_type', CAST(:event AS text), 'job_id', c.id, 'job_name', c.name, "
            "'from_status', CAST(:src AS text), 'to_status', CAST(:dst AS text)) "
            "FROM (SELECT id, name, priority FROM claimed ORDER BY priority DESC, id) c "
            "RETURNING id) "
            "SELECT claimed.*, (SELECT string_agg(f.file_id::text, ',') FROM torc_job_files f "
            "WHERE f.job_id = claimed.id AND f.direction = 'out') AS out_files, "
            "(SELECT string_agg(u.user_data_id::text, ',') FROM torc_job_user_data u "
            "WHERE u.job_id = claimed.id AND u.direction = 'out') AS out_user_data, "
            "(SELECT count(*) FROM ev) AS events FROM claimed",
            params,
        )
        if not rows:
            self.session.rollback()
            self._workflow(Sql(self.session), workflow_id)
            return []
        self.session.commit()
        jobs = sorted(((JobRow.of(r), r) for r in rows), key=lambda p: (-p[0].priority, p[0].id))
        return [
            job.wire(
                {
                    "output_file_ids": _ids(row.out_files),
                    "output_user_data_ids": _ids(row.out_user_data),
                }
            )
            for job, row in jobs
        ]

    def claim_by_resources(
        self,
        workflow_id: int,
        limit: int,
        resources: Mapping[str, Any],
        *,
        time_cap_s: float,
        sort_method: str | None,
        strict_scheduler_match: bool,
    ) -> dict[str, Any]:
        """Claim ready jobs that fit, together, in ``resources`` (torc's greedy packing).

        Returns:
            ``{"jobs": [...]}`` in packing order, plus ``reason`` for a canceled workflow.

        Raises:
            NotFoundError: unknown workflow.
            ValidationFailedError: ``limit`` outside 0..10000.
        """
        sql = Sql(self.session)
        workflow = self._workflow(sql, workflow_id)
        if workflow.is_canceled:
            return {"jobs": [], "reason": CANCELED_REASON}
        if check_limit(0, limit) == 0:
            return {"jobs": []}
        begin_write(self.session)
        query = (workflow_id, limit, resources, time_cap_s, sort_method)
        matched = True
        rows = self._candidates(sql, *query, match_scheduler=True)
        if (
            not rows
            and not strict_scheduler_match
            and resources.get("scheduler_config_id") is not None
        ):
            matched = False
            rows = self._candidates(sql, *query, match_scheduler=False)
        chosen = pack(rows, resources, limit)
        if len(chosen) < limit and len(rows) == limit:
            # Backfill: candidates past the first LIMIT that fit what is left.
            left = remaining(resources, rows, chosen)
            if left["num_cpus"] > 0 and left["memory_gb"] > 0:
                more = self._candidates(
                    sql,
                    workflow_id,
                    limit - len(chosen),
                    left,
                    time_cap_s,
                    sort_method,
                    match_scheduler=matched,
                    exclude=[r.id for r in rows],
                )
                chosen += pack(more, left, limit - len(chosen))
        return {"jobs": self._claim_ids(sql, workflow_id, chosen)}

    def _candidates(
        self,
        sql: Sql,
        workflow_id: int,
        limit: int,
        resources: Mapping[str, Any],
        time_cap_s: float,
        sort_method: str | None,
        *,
        match_scheduler: bool,
        exclude: list[int] | None = None,
    ) -> list[Any]:
        """Ready jobs that fit the offer one by one, in ``sort_method`` order (locked on PG)."""
        params: dict[str, Any] = {
            "w": workflow_id,
            "src": _FROM.value,
            "cpus": resources["num_cpus"],
            "gpus": resources["num_gpus"],
            "nodes": resources["num_nodes"],
            "mem": memory_cap(resources),
            "k": limit,
        }
        where = [
            "j.workflow_id = :w",
            "j.status = :src",
            f"{_CPUS} <= :cpus",
            f"{_GPUS} <= :gpus",
            f"{_NODES} <= :nodes",
            f"{_MEMORY} <= :mem",
        ]
        if time_cap_s != float("inf"):
            where.append(f"{_RUNTIME} <= :time")
            params["time"] = time_cap_s
        if match_scheduler and resources.get("scheduler_config_id") is not None:
            where.append("(j.scheduler_id IS NULL OR j.scheduler_id = :sched)")
            params["sched"] = resources["scheduler_config_id"]
        if exclude:
            where.append(f"j.id NOT IN ({sql.expand('x', exclude, params)})")
        lock = "" if sql.sqlite else " FOR UPDATE OF j SKIP LOCKED"
        return sql.rows(
            f"SELECT j.id AS id, j.priority AS priority, {_CPUS} AS cpus, {_GPUS} AS gpus, "
            f"{_NODES} AS nodes, "
            f"{_MEMORY} AS memory, {_RUNTIME} AS runtime FROM torc_jobs j "
            "LEFT OUTER JOIN torc_resource_requirements rr ON rr.id = j.resource_requirements_id "
            f"WHERE {' AND '.join(where)} ORDER BY {ORDER_BY[sort_method]} LIMIT :k{lock}",
            params,
        )

    def claim_ids(self, workflow_id: int, ids: list[int]) -> list[dict[str, Any]]:
        """Claim exactly these jobs if they are still ready, in the order given."""
        return self._claim_ids(Sql(self.session), workflow_id, ids)

    def _claim_ids(self, sql: Sql, workflow_id: int, ids: list[int]) -> list[dict[str, Any]]:
        if not ids:
            self.session.rollback()
            return []
        params: dict[str, Any] = {"src": _FROM.value, "dst": _TO.value}
        keys = sql.expand("i", ids, params)
        rows = sql.rows(
            f"UPDATE torc_jobs SET status = :dst WHERE status = :src AND id IN ({keys}) "
            f"RETURNING {JOB_COLUMNS}",
            params,
        )
        order = {job_id: i for i, job_id in enumerate(ids)}
        return sorted(self._finish_claim(sql, workflow_id, rows), key=lambda j: order[j["id"]])

    def _finish_claim(self, sql: Sql, workflow_id: int, rows: list[Any]) -> list[dict[str, Any]]:
        """Events and output links of the claimed jobs, then commit."""
        if not rows:
            self.session.rollback()
            return []
        jobs = sorted((JobRow.of(r) for r in rows), key=lambda j: (-j.priority, j.id))
        outputs: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        params: dict[str, Any] = {}
        keys = sql.expand("j", [j.id for j in jobs], params)
        for link in sql.rows(
            "SELECT job_id, file_id AS ref, 'output_file_ids' AS kind FROM torc_job_files "
            f"WHERE direction = 'out' AND job_id IN ({keys}) UNION ALL "
            "SELECT job_id, user_data_id AS ref, 'output_user_data_ids' AS kind "
            f"FROM torc_job_user_data WHERE direction = 'out' AND job_id IN ({keys})",
            params,
        ):
            outputs[link.job_id][link.kind].append(link.ref)
        sql.events(workflow_id, [job_event(j.id, j.name, _FROM, _TO) for j in jobs])
        self.session.commit()
        return [j.wire(outputs.get(j.id)) for j in jobs]
