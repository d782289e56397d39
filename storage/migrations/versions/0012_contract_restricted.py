"""need-to-know: contract.restricted (`restrict CR-n`), readable only by its filer, its reviewers, managers,
officials and admins, every read audited

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-07 02:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # every contract filed before this is unrestricted, as it was: the server default fills the existing rows
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restricted", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("restricted")
