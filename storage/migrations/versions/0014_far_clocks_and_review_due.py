"""the contract's FAR clocks and §2(j) reviews: contract.stopwork_extended_until (`stopwork-extend`),
contract.term_ends (the period of performance's last day), contract.review_due_since and review_event_id (a
§2(j) review a vendor event opened)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # all nullable: contracts filed before this have no extension, no computed end and no review due
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stopwork_extended_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("term_ends", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("review_due_since", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("review_event_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_column("review_event_id")
        batch_op.drop_column("review_due_since")
        batch_op.drop_column("term_ends")
        batch_op.drop_column("stopwork_extended_until")
