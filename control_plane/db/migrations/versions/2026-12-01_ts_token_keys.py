"""torchserve token keys

Revision ID: tstoken0001
Revises: ts0001
Create Date: 2026-12-01 11:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "tstoken0001"
down_revision = "ts0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``ts_token_keys``."""
    op.create_table(
        "ts_token_keys",
        sa.Column("key_type", sa.String(length=20), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_type", name=op.f("pk_ts_token_keys")),
    )


def downgrade() -> None:
    """Drop ``ts_token_keys``."""
    op.drop_table("ts_token_keys")
