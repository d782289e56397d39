"""the order's paperwork: the notices drafted and sent (their SHA-256, who, when), the waiver's §2(m)
justification (circumstances, alternatives), and the question set a contract was filed under

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:25:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=True),
        sa.Column("ref", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_contract_id"), ["contract_id"], unique=False)
    # contracts filed before this have none of these: NULL question_set is the first question set
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiver_circumstances", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("waiver_alternatives", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("question_set", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("question_set")
        batch_op.drop_column("waiver_alternatives")
        batch_op.drop_column("waiver_circumstances")
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_contract_id"))
    op.drop_table("notice")
