"""Migration 0015: contracts filed before vendors existed are linked to one."""

from __future__ import annotations

from storage.db import make_engine, migrate


def test_contracts_filed_before_vendors_are_linked_to_one(database):
    """A database in use before vendors: each contract is linked to a vendor, look-alike names to the same one."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.domain.names import normalise_name
    from storage.db import MIGRATIONS_DIR

    url, schema = database
    engine = make_engine(url, schema=schema)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0014")
        for vendor in ("Paragon Solutions (US) Inc.", "PARAGON SOLUTIONS", "Intellexa S.A."):
            conn.execute(
                text(
                    "INSERT INTO contract (vendor, product, agency, filed_by, filed_at, status, third_party) "
                    "VALUES (:v, 'Graphite', 'ICE', 'U1', '2024-09-30 12:00:00+00', 'intake', false)"
                ),
                {"v": vendor},
            )
        conn.commit()
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.vendor, v.name, v.normalised FROM contract c JOIN vendor v ON v.id = c.vendor_id ORDER BY c.id"
            )
        ).all()
    engine.dispose()
    assert [r[1] for r in rows] == [
        "Paragon Solutions (US) Inc.",
        "Paragon Solutions (US) Inc.",
        "Intellexa S.A.",
    ]
    # the migration's own copy of the normalising agrees with bot.domain.names: these vendors are found again
    assert all(r[2] == normalise_name(r[0]) for r in rows)
