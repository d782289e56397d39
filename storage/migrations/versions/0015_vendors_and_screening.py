"""vendors (aliases, parent, affiliates, events) and screening lists (snapshots, entries, possible matches);
every contract linked to a vendor (contract.vendor_id), the existing ones by this migration

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 02:30:00.000000
"""

import re
import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# bot.domain.names.normalise_name as it was when this migration was written (a migration must not change when
# the code does): a vendor linked here is found again by that function today
_LEGAL_FORMS = frozenset(
    "inc incorporated corp corporation co company ltd limited llc llp lp plc pllc pty pte lc sa sas sasu sarl srl "
    "spa sl slu sau ltda sca scs snc eurl gmbh ag kg ohg ug bv nv vof ab as asa aps oy oyj sro kft zrt nyrt sp "
    "zoo doo dd ad ead eood ood jsc ojsc cjsc pjsc ooo oao zao pao ao tov bm ae epe ike".split()
)
_TRANSLIT = str.maketrans(
    {
        letter: latin.replace("-", "")
        for letter, latin in zip(
            "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґўђјљњћџѓќѕαβγδεζηθικλμνξοπρσςτυφχψω",
            "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya i yi ye g u dj j lj nj c "
            "dz gj kj dz a v g d e z i th i k l m n x o p r s s t y f ch ps o".split(" "),
            strict=True,
        )
    }
)
_JOINED = re.compile(r"[.'’`´]")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_NOT_WORD = re.compile(r"[\W_]+")


def _normalise(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold().replace("&", " and ")
    text = unicodedata.normalize("NFD", text).translate(_TRANSLIT)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _JOINED.sub("", text)
    words = _NOT_WORD.sub(" ", _PARENS.sub(" ", text)).split() or _NOT_WORD.sub(" ", text).split()
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:  # runs of single letters made one word ("s a" -> "sa")
        if len(word) == 1:
            run.append(word)
            continue
        if run:
            joined += ["".join(run)] if len(run) > 1 else run
            run = []
        if word:
            joined.append(word)
    words = joined
    while len(words) > 1 and words[-1] in _LEGAL_FORMS:
        words = words[:-1]
    while len(words) > 1 and words[0] in _LEGAL_FORMS:
        words = words[1:]
    return " ".join(words)


def upgrade() -> None:
    op.create_table(
        "vendor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("normalised", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["vendor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("normalised"),
    )
    op.create_index(op.f("ix_vendor_parent_id"), "vendor", ["parent_id"], unique=False)
    op.create_table(
        "vendor_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("alias", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("normalised", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "normalised"),
    )
    op.create_index(op.f("ix_vendor_alias_vendor_id"), "vendor_alias", ["vendor_id"], unique=False)
    op.create_index(op.f("ix_vendor_alias_normalised"), "vendor_alias", ["normalised"], unique=False)
    op.create_table(
        "vendor_affiliate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("affiliate_vendor_id", sa.Integer(), nullable=False),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["affiliate_vendor_id"], ["vendor.id"]),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "affiliate_vendor_id"),
    )
    op.create_index(op.f("ix_vendor_affiliate_vendor_id"), "vendor_affiliate", ["vendor_id"], unique=False)
    op.create_index(
        op.f("ix_vendor_affiliate_affiliate_vendor_id"),
        "vendor_affiliate",
        ["affiliate_vendor_id"],
        unique=False,
    )
    op.create_table(
        "vendor_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_vendor_event_vendor_id"), "vendor_event", ["vendor_id"], unique=False)
    op.create_table(
        "screening_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_screening_snapshot_list_name"), "screening_snapshot", ["list_name"], unique=False
    )
    op.create_table(
        "screening_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("entry_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("names", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["screening_snapshot.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_screening_entry_snapshot_id"), "screening_entry", ["snapshot_id"], unique=False)
    op.create_table(
        "screening_match",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("list_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entry_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entry_name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("matched_name", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("disposed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("disposed_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["screening_snapshot.id"]),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("vendor_id", "list_name", "entry_key"),
    )
    op.create_index(op.f("ix_screening_match_snapshot_id"), "screening_match", ["snapshot_id"], unique=False)
    op.create_index(op.f("ix_screening_match_vendor_id"), "screening_match", ["vendor_id"], unique=False)
    op.create_index(op.f("ix_screening_match_status"), "screening_match", ["status"], unique=False)
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vendor_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_contract_vendor_id"), ["vendor_id"], unique=False)
        batch_op.create_foreign_key("fk_contract_vendor_id_vendor", "vendor", ["vendor_id"], ["id"])
    _link_existing_contracts()


def _link_existing_contracts() -> None:
    # every contract filed before vendors existed gets one: the first filing of a normalised name names it
    conn = op.get_bind()
    contract = sa.table(
        "contract",
        sa.column("id", sa.Integer),
        sa.column("vendor", sa.String),
        sa.column("filed_at", storage.types.UTCDateTime()),
        sa.column("vendor_id", sa.Integer),
    )
    vendor = sa.table(
        "vendor",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("normalised", sa.String),
        sa.column("created_at", storage.types.UTCDateTime()),
    )
    ids: dict[str, int] = {}
    rows = conn.execute(
        sa.select(contract.c.id, contract.c.vendor, contract.c.filed_at).order_by(contract.c.id)
    )
    for row in rows.all():
        name = (row.vendor or "").strip() or "(unnamed)"
        key = _normalise(name) or name.casefold()
        if key not in ids:
            created = row.filed_at or datetime.now(UTC)
            conn.execute(vendor.insert().values(name=name, normalised=key, created_at=created))
            ids[key] = int(
                conn.execute(sa.select(vendor.c.id).where(vendor.c.normalised == key)).scalar_one()
            )
        conn.execute(contract.update().where(contract.c.id == row.id).values(vendor_id=ids[key]))


def downgrade() -> None:
    with op.batch_alter_table("contract", schema=None) as batch_op:
        batch_op.drop_constraint("fk_contract_vendor_id_vendor", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_contract_vendor_id"))
        batch_op.drop_column("vendor_id")
    for table in (
        "screening_match",
        "screening_entry",
        "screening_snapshot",
        "vendor_event",
        "vendor_affiliate",
        "vendor_alias",
        "vendor",
    ):
        op.drop_table(table)
