"""torchserve models: job_queue_size, num_gpus

Revision ID: ts0002
Revises: tstoken0001
Create Date: 2026-12-01 11:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ts0002"
down_revision = "tstoken0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``ts_models.job_queue_size`` and ``num_gpus`` (model-config.yaml)."""
    with op.batch_alter_table("ts_models") as batch:
        batch.add_column(sa.Column("job_queue_size", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("num_gpus", sa.Float(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    """Drop ``ts_models.job_queue_size`` and ``num_gpus``."""
    with op.batch_alter_table("ts_models") as batch:
        batch.drop_column("num_gpus")
        batch.drop_column("job_queue_size")
