"""The prediction log and the ground truth: tables ``predictions`` and ``labels``.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# 64-bit ids on PostgreSQL; SQLite's autoincrementing key must be declared INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=True),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
    )
    op.create_index("ix_predictions_record_key", "predictions", ["record_key"])
    op.create_index("ix_predictions_logged_at", "predictions", ["logged_at"])
    op.create_table(
        "labels",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
    )
    op.create_index("ix_labels_record_key", "labels", ["record_key"])


def downgrade() -> None:
    op.drop_table("labels")
    op.drop_table("predictions")
