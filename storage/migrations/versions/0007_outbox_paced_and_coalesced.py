"""the outbox as Slack really is: rate-limit buckets shared by every process, DM channels opened once, what each
message last sent (so an edit that changes nothing is not sent), and which dead message another one died with

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:10:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_rate",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "slack_dm",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("opened_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("depends_on", sa.Integer(), nullable=True))
        batch_op.create_index("ix_outbox_depends_on", ["depends_on"], unique=False)
        batch_op.create_index("ix_outbox_message", ["contract_id", "message_key", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message")
        batch_op.drop_index("ix_outbox_depends_on")
        batch_op.drop_column("depends_on")
        batch_op.drop_column("content_hash")
    op.drop_table("slack_dm")
    op.drop_table("slack_rate")
