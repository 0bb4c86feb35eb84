"""torc failure handlers; results unique per (job, run, attempt)

Revision ID: 0003_torc
Revises: 0002_torc
Create Date: 2026-12-01 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_torc"
down_revision = "0002_torc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "torc_failure_handlers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["torc_workflows.id"],
            name=op.f("fk_torc_failure_handlers_workflow_id_torc_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_torc_failure_handlers")),
    )
    op.create_index(
        op.f("ix_torc_failure_handlers_workflow_id"), "torc_failure_handlers", ["workflow_id"]
    )
    # Earlier versions stored a second result for the same attempt: keep the newest one.
    op.execute(
        "DELETE FROM torc_results WHERE id NOT IN (SELECT MAX(id) FROM torc_results "
        "GROUP BY job_id, run_id, attempt_id)"
    )
    op.create_index(
        "ux_torc_results_job_run_attempt",
        "torc_results",
        ["job_id", "run_id", "attempt_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_torc_results_job_run_attempt", table_name="torc_results")
    op.drop_index(op.f("ix_torc_failure_handlers_workflow_id"), table_name="torc_failure_handlers")
    op.drop_table("torc_failure_handlers")
