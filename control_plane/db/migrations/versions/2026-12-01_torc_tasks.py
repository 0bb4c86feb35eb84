"""torc tasks (async initialize_jobs)

Revision ID: 0006_torc
Revises: 0005_torc
Create Date: 2026-12-01 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_torc"
down_revision = "0005_torc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "torc_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=60), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("started_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["torc_workflows.id"],
            name=op.f("fk_torc_tasks_workflow_id_torc_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_torc_tasks")),
    )
    op.create_index(op.f("ix_torc_tasks_workflow_id"), "torc_tasks", ["workflow_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_torc_tasks_workflow_id"), table_name="torc_tasks")
    op.drop_table("torc_tasks")
