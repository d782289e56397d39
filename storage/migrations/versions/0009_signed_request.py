"""at most once: the signed requests already carried out, kept for Slack's signature window plus clock skew

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 01:50:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_request",
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("signed_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signed_request_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signed_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_request_expires_at"))
    op.drop_table("signed_request")
