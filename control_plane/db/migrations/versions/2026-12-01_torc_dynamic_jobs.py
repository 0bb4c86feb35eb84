"""torc workflows: dynamic_jobs (spawn_jobs cap)

Revision ID: 0005_torc
Revises: 0004_torc
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_torc"
down_revision = "0004_torc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("torc_workflows") as batch:
        batch.add_column(sa.Column("dynamic_jobs", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("torc_workflows") as batch:
        batch.drop_column("dynamic_jobs")
