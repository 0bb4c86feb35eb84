"""torc workflow actions

Revision ID: 0004_torc
Revises: 0003_torc
Create Date: 2026-12-01 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_torc"
down_revision = "0003_torc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "torc_workflow_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("trigger_type", sa.String(length=40), nullable=False),
        sa.Column("action_type", sa.String(length=60), nullable=False),
        sa.Column("action_config", sa.Text(), nullable=True),
        sa.Column("job_ids", sa.Text(), nullable=True),
        sa.Column("trigger_count", sa.Integer(), nullable=False),
        sa.Column("required_triggers", sa.Integer(), nullable=False),
        sa.Column("executed", sa.Boolean(), nullable=False),
        sa.Column("executed_at", sa.String(length=40), nullable=True),
        sa.Column("executed_by", sa.Integer(), nullable=True),
        sa.Column("persistent", sa.Boolean(), nullable=False),
        sa.Column("is_recovery", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["torc_workflows.id"],
            name=op.f("fk_torc_workflow_actions_workflow_id_torc_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_torc_workflow_actions")),
    )
    op.create_index(
        op.f("ix_torc_workflow_actions_workflow_id"), "torc_workflow_actions", ["workflow_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_torc_workflow_actions_workflow_id"), table_name="torc_workflow_actions")
    op.drop_table("torc_workflow_actions")
