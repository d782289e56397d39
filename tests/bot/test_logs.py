"""The one logging setup: an idle bot writes nothing at INFO, and start-up has no warnings about the token."""

from __future__ import annotations

import logging
import time

import pytest

from bot.app import create_app
from bot.logs import configure_logging
from storage.db import make_engine
from tests.conftest import make_settings, pg_audit_key_file


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {
        n: logging.getLogger(n).level for n in ("apscheduler", "alembic", "slack_bolt", "slack_sdk")
    }
    configure_logging(logging.INFO)
    handler = Collect()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


def test_start_up_and_an_idle_minute_write_nothing_at_info(collected, database, double, monkeypatch):
    monkeypatch.setenv(
        "SLACK_BOT_TOKEN", "xoxb-test"
    )  # as `serve` runs: Bolt reads it from the environment too
    url, schema = database
    bot = create_app(
        # an audit key that exists (its creation on a first start is a warning of its own, once)
        make_settings(double, url, reminder_interval_seconds=1, audit_key_file=pg_audit_key_file()),
        engine=make_engine(url, schema=schema),
    )
    try:
        bot.start_background(scheduler=True)
        time.sleep(2.5)  # the reminder sweep runs every second: two or three idle runs
    finally:
        bot.stop()
    said = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in collected if r.levelno >= logging.INFO]
    assert said == [], said


def test_library_loggers_are_kept_to_warnings(collected):
    for name in ("apscheduler", "alembic", "slack_bolt", "slack_sdk"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING, name
    assert logging.getLogger("contract_bot.requests").getEffectiveLevel() == logging.INFO
