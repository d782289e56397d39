"""storage.configuration: settings, channels and screening list names in one statement per transaction, that
follows the transaction's own writes to any of them (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import event

from storage import channels, configuration
from storage import repositories as repo
from storage import vendors as vrepo
from storage.db import make_engine, migrate, read_only, session_factory, unit_of_work

NOW = datetime(2024, 9, 27, 14, 0, tzinfo=UTC)


def test_one_statement_reads_all_three_and_a_write_to_any_is_seen_by_the_next_read(database):
    url, schema = database
    engine = make_engine(url, schema=schema)
    migrate(engine)
    factory = session_factory(engine)
    statements: list[str] = []
    tables = ("setting", "slack_channel", "screening_snapshot")
    event.listen(
        engine,
        "before_cursor_execute",
        lambda *a: statements.append(a[2]) if any(t in a[2] for t in tables) else None,
    )
    with unit_of_work(factory) as s:
        empty = configuration.read(s)
        assert empty == configuration.Configuration({}, {}, ())
        assert repo.put_setting(s, "review_channel", "C0REVIEW", "UA", NOW) is None
        assert repo.get_settings(s) == {"review_channel": "C0REVIEW"}
        assert channels.refusal_of(s, "C0REVIEW") is None  # never checked
        channels.record_channel(s, "C0REVIEW", is_member=False, problem="not_in_channel", at=NOW)
        assert channels.refusal_of(s, "C0REVIEW") == (False, "not_in_channel")
        assert vrepo.latest_snapshots(s) == []
        for on_date in (date(2024, 9, 1), date(2024, 9, 2)):
            vrepo.add_snapshot(s, list_name="csl", on_date=on_date, sha256="0" * 64, entry_count=0, at=NOW)
        vrepo.add_snapshot(
            s, list_name="sdn", on_date=date(2024, 9, 1), sha256="1" * 64, entry_count=0, at=NOW
        )
        assert [(x.list_name, x.on_date) for x in vrepo.latest_snapshots(s)] == [
            ("csl", date(2024, 9, 2)),
            ("sdn", date(2024, 9, 1)),
        ]
    with read_only(factory) as s:
        statements.clear()
        assert repo.get_settings(s) == {"review_channel": "C0REVIEW"}
        assert channels.refusal_of(s, "C0REVIEW") == (False, "not_in_channel")
        assert channels.refusal_of(s, "C0OTHER") is None
        assert configuration.read(s).list_names == ("csl", "sdn")
        assert len(statements) == 1  # all of it, once
    engine.dispose()
