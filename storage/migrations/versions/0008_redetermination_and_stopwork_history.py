"""records that tell the truth: a §2(j) re-determination under way (answers reopened), and the day the last
stop-work order was lifted (a new one may not be dated inside it)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:45:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contract") as batch:
        batch.add_column(sa.Column("stopwork_lifted_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("redetermination_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("redetermination_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("redetermination_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract") as batch:
        batch.drop_column("redetermination_by")
        batch.drop_column("redetermination_reason")
        batch.drop_column("redetermination_on")
        batch.drop_column("stopwork_lifted_on")
