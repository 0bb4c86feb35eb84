"""Claiming ready jobs in plain SQL: ``ready -> pending``, atomically on both databases."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import NotFoundError
from control_plane.services.torc.common import job_event
from control_plane.services.torc.sql import JOB_COLUMNS, Sql, row_to_job
from control_plane.services.torc.txn import begin_write


class HotPath:
    """Claims and completions for runners."""

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
        """Claim up to ``limit`` ready jobs (lowest ids first): ready -> pending, atomically."""
        sql = Sql(self.session)
        workflow = self._workflow(sql, workflow_id)
        if workflow[2] or limit <= 0:
            return []
        begin_write(self.session)
        pick = (
            "SELECT id FROM torc_jobs WHERE workflow_id = :w AND status = 'ready' "
            "ORDER BY id LIMIT :k"
        )
        if sql.sqlite:
            statement = (
                "UPDATE torc_jobs SET status = 'pending' "
                f"WHERE status = 'ready' AND id IN ({pick}) "
                f"RETURNING {JOB_COLUMNS}"
            )
        else:
            # A CTE, not IN (...): PostgreSQL may re-run an IN subquery with LIMIT per row.
            statement = (
                f"WITH picked AS ({pick} FOR UPDATE SKIP LOCKED) "
                "UPDATE torc_jobs SET status = 'pending' "
                f"FROM picked WHERE torc_jobs.id = picked.id RETURNING "
                + ", ".join(f"torc_jobs.{c}" for c in JOB_COLUMNS.split(", "))
            )
        rows = sql.rows(statement, {"w": workflow_id, "k": limit})
        return self._finish_claim(sql, workflow_id, rows)

    def claim_ids(self, workflow_id: int, ids: list[int]) -> list[dict[str, Any]]:
        """Claim exactly these jobs if they are still ready (used after resource packing)."""
        sql = Sql(self.session)
        if not ids:
            self.session.rollback()
            return []
        params: dict[str, Any] = {}
        keys = sql.expand("i", ids, params)
        rows = sql.rows(
            f"UPDATE torc_jobs SET status = 'pending' WHERE status = 'ready' AND id IN ({keys}) "
            f"RETURNING {JOB_COLUMNS}",
            params,
        )
        order = {job_id: i for i, job_id in enumerate(ids)}
        return sorted(self._finish_claim(sql, workflow_id, rows), key=lambda j: order[j["id"]])

    def _finish_claim(self, sql: Sql, workflow_id: int, rows: list[Any]) -> list[dict[str, Any]]:
        if not rows:
            self.session.rollback()
            return []
        rows.sort(key=lambda r: r[0])
        outputs: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        params: dict[str, Any] = {}
        keys = sql.expand("j", [r[0] for r in rows], params)
        for job_id, ref, kind in sql.rows(
            "SELECT job_id, file_id, 'f' FROM torc_job_files "
            f"WHERE direction = 'out' AND job_id IN ({keys}) UNION ALL "
            "SELECT job_id, user_data_id, 'u' FROM torc_job_user_data "
            f"WHERE direction = 'out' AND job_id IN ({keys})",
            params,
        ):
            outputs[job_id]["output_file_ids" if kind == "f" else "output_user_data_ids"].append(
                ref
            )
        sql.events(workflow_id, [job_event(r[0], r[2], "ready", "pending") for r in rows])
        self.session.commit()
        return [row_to_job(r, outputs.get(r[0])) for r in rows]
