"""Alembic is the only way the schema changes: the migrations build exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import make_engine, migrate


def test_migrations_match_models(database):
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    migrate(engine)  # a second start finds nothing to do
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == [], diff


def test_contracts_filed_before_0010_get_their_filing_key(database):
    """A database in use before the fingerprint column: its open contracts are still found as look-alikes."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.domain.review import filing_fingerprint
    from storage.db import MIGRATIONS_DIR

    url, schema = database
    engine = make_engine(url, schema=schema)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0009")
        conn.execute(
            text(
                "INSERT INTO contract (vendor, product, agency, filed_by, filed_at, status, third_party) "
                "VALUES ('Paragon Solutions, Inc.', 'Graphite', 'ICE', 'U1', '2024-09-30 12:00:00+00', "
                "'intake', false)"
            )
        )
        conn.commit()
    migrate(engine)
    with engine.connect() as conn:
        key = conn.execute(text("SELECT filing_key FROM contract")).scalar_one()
    engine.dispose()
    assert key == filing_fingerprint("paragon solutions inc", "GRAPHITE", "ice")
