"""`contract-bot reminders due [--at ISO-DATETIME]`: lists what a sweep would send, and sends nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.cli import main
from bot.clock import ManualClock
from storage import repositories as repo
from storage.db import make_engine, session_factory, unit_of_work
from storage.models import Reminder
from tests.conftest import ADMIN, MANAGER, MANAGERS, START, make_settings


def _url_with_schema(url: str, schema: str | None) -> str:
    """A DATABASE_URL that selects the test's own PostgreSQL schema (the CLI builds its own engine)."""
    if not schema:
        return url
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def seeded(database, double, monkeypatch):
    """A database with CR-1 under a stop-work order since Tuesday 24 November 2026, and the CLI's environment."""
    url, schema = database
    bot = create_app(
        make_settings(double, url), engine=make_engine(url, schema=schema), clock=ManualClock(START)
    )
    try:
        bot.service.grant(ADMIN, MANAGER, "manager")
        bot.service.file_contract(MANAGER, {"vendor": "Paragon", "product": "Graphite", "agency": "ICE"})
        bot.service.stopwork(MANAGER, 1, "hold")
        with unit_of_work(bot.session_factory) as s:
            outbox_before = repo.count_outbox(s, "pending")
    finally:
        bot.stop()
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "ADMIN_USER_IDS", "BOT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", _url_with_schema(url, schema))
    monkeypatch.setenv("MANAGER_CHANNEL", MANAGERS)
    monkeypatch.setenv("REVIEW_CHANNEL", "CREVIEW1")
    return url, schema, outbox_before


def _state(url: str, schema: str | None) -> tuple[list[tuple[str, str]], int]:
    engine = make_engine(url, schema=schema)
    try:
        with unit_of_work(session_factory(engine)) as s:
            rows = [(r.key, r.status) for r in s.execute(select(Reminder).order_by(Reminder.id)).scalars()]
            return rows, repo.count_outbox(s, "pending")
    finally:
        engine.dispose()


def test_reminders_due_lists_without_sending(seeded, capsys):
    url, schema, outbox_before = seeded
    before = _state(url, schema)
    assert main(["reminders", "due", "--at", "2026-11-25T09:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("At 2026-11-25 09:00 EST: 1 reminder(s) would be sent in 1 message(s)")
    assert f"-> {MANAGERS}" in out and "Reminder: the stop-work order on *CR-1*" in out
    assert _state(url, schema) == before and before[1] == outbox_before  # nothing claimed, sent or queued


def test_reminders_due_at_a_later_moment_and_with_a_zone(seeded, capsys):
    url, schema, _ = seeded
    assert main(["reminders", "due", "--at", "2026-11-27T14:00:00+00:00"]) == 0  # Friday 09:00 New York
    out = capsys.readouterr().out
    assert "the stop-work order on *CR-1*" in out  # the Wednesday ping, due and not yet sent
    assert (
        "-> thread of CR-1" in out and "still unanswered" in out
    )  # questions asked Tuesday: 2 business days
    assert main(["reminders", "due", "--at", "2026-11-25T08:59"]) == 0
    assert "0 reminder(s) would be sent" in capsys.readouterr().out


def test_reminders_due_defaults_to_now_and_refuses_a_bad_time(seeded, capsys):
    assert main(["reminders", "due"]) == 0
    assert "would be sent" in capsys.readouterr().out
    assert main(["reminders", "due", "--at", "next tuesday"]) == 2
    assert "--at must be an ISO date-time" in capsys.readouterr().err
