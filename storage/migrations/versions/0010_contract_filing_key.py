"""a look-alike filing is one index probe: contract.filing_key, the fingerprint of vendor, product and agency

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:45:00.000000
"""

import hashlib
import re
import unicodedata

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_NOT_WORD = re.compile(r"[\W_]+")


def _fingerprint(vendor: str, product: str, agency: str) -> str:
    # bot.domain.review.filing_fingerprint as it was when this migration was written (a migration must not
    # change when the code does)
    def norm(text: str) -> str:
        return " ".join(_NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())

    key = "\x1f".join((norm(vendor), norm(product), norm(agency)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filing_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_contract_filing_key"), ["filing_key"], unique=False)
    conn = op.get_bind()
    contract = sa.table(
        "contract",
        sa.column("id", sa.Integer),
        sa.column("vendor", sa.String),
        sa.column("product", sa.String),
        sa.column("agency", sa.String),
        sa.column("filing_key", sa.String),
    )
    rows = conn.execute(
        sa.select(contract.c.id, contract.c.vendor, contract.c.product, contract.c.agency)
    ).all()
    for row in rows:
        conn.execute(
            contract.update()
            .where(contract.c.id == row.id)
            .values(filing_key=_fingerprint(row.vendor or "", row.product or "", row.agency or ""))
        )


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_filing_key"))
        batch_op.drop_column("filing_key")
