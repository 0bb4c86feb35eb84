"""Claiming ready jobs: ``claim_next_jobs`` and resource-aware claiming.

Both run on the plain-SQL path (``hot.py``): one read of the workflow, then one write
transaction that moves jobs ``ready -> pending`` atomically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from control_plane.errors import ValidationFailedError
from control_plane.services.torc.common import check_limit, parse_runtime
from control_plane.services.torc.hot import HotPath
from control_plane.services.torc.packing import SORT_METHODS
from control_plane.services.torc.txn import run_retrying

DEFAULT_CLAIM_LIMIT = 10


class ClaimService:
    """Hands ready jobs to runners, each job to exactly one."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_next(self, workflow_id: int, limit: int = DEFAULT_CLAIM_LIMIT) -> dict[str, Any]:
        """Claim up to ``limit`` ready jobs (lowest ids first), ignoring resources.

        Raises:
            ValidationFailedError: ``limit`` outside 0..10000.
            NotFoundError: unknown workflow.
        """
        check_limit(0, limit)
        hot = HotPath(self.session)
        return run_retrying(self.session, lambda: {"jobs": hot.claim_next(workflow_id, limit)})

    def claim_by_resources(
        self,
        workflow_id: int,
        limit: int,
        resources: dict[str, Any],
        *,
        sort_method: str | None = None,
        strict_scheduler_match: bool = False,
    ) -> dict[str, Any]:
        """Claim ready jobs that fit, together, in the capacity a runner reports.

        Raises:
            ValidationFailedError: bad ``time_limit``, ``sort_method`` or ``limit``.
            NotFoundError: unknown workflow.
        """
        if sort_method is not None and sort_method not in SORT_METHODS:
            raise ValidationFailedError(
                f"Got sort_method '{sort_method}'; expected one of {', '.join(SORT_METHODS)}"
            )
        time_limit = resources.get("time_limit")
        time_cap_s = parse_runtime(time_limit) if time_limit else float("inf")
        hot = HotPath(self.session)
        return run_retrying(
            self.session,
            lambda: hot.claim_by_resources(
                workflow_id,
                limit,
                resources,
                time_cap_s=time_cap_s,
                sort_method=sort_method,
                strict_scheduler_match=strict_scheduler_match,
            ),
        )
