"""torc jobs: priority, env, origin, start_time (torc API 0.21)

Revision ID: 0002_torc
Revises: 0001_torc
Create Date: 2026-12-01 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_torc"
down_revision = "0001_torc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("torc_jobs") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("env", sa.Text(), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("start_time", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("torc_jobs") as batch:
        batch.drop_column("start_time")
        batch.drop_column("origin")
        batch.drop_column("env")
        batch.drop_column("priority")
