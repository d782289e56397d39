"""The record of signed requests carried out (storage/replays.py, bot/services/replays.py), on both databases:
recorded with the request's first commit, refused on a second, burnt after "nothing recorded", purged after the
signature window."""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.services.replays import CLOCK_SKEW_SECONDS, SIGNATURE_WINDOW_SECONDS, ReplayGuard
from storage.db import read_only, session_factory, unit_of_work
from storage.models import Setting
from storage.replays import AlreadyCarriedOut, is_recorded, watching

T0 = 1_800_000_000  # a request's X-Slack-Request-Timestamp


@pytest.fixture
def db(migrated_engine):
    return migrated_engine


def put(s, key: str) -> None:
    s.add(Setting(key=key, value="v", updated_by="UADMIN1", updated_at=datetime.now(UTC)))


def settings(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT key FROM setting ORDER BY key"))]


def in_request(guard: ReplayGuard, timestamp: str, signature: str, fn):
    """Run ``fn`` as a request's work runs: in a fresh context (a request thread) under its mark."""

    def run():
        with guard.once(timestamp, signature):
            return fn()

    return contextvars.Context().run(run)


def test_recorded_with_the_first_commit_and_refused_again(db):
    plain = session_factory(db)
    factory, guard = watching(plain), ReplayGuard(plain)

    def work(key: str):
        def fn():
            with read_only(factory) as s:  # a read first, as most requests do
                s.execute(text("SELECT 1"))
            with unit_of_work(factory) as s:
                put(s, key)
            with unit_of_work(factory) as s:  # a second unit of work of the same request (an audited refusal)
                put(s, key + "-2")

        return fn

    in_request(guard, str(T0), "v0=aaa", work("first"))
    assert settings(db) == ["first", "first-2"]
    with pytest.raises(AlreadyCarriedOut):
        in_request(guard, str(T0), "v0=aaa", work("again"))
    assert settings(db) == ["first", "first-2"]
    # another signature (or another timestamp) is another request
    in_request(guard, str(T0), "v0=bbb", work("other"))
    in_request(guard, str(T0 + 1), "v0=aaa", work("later"))
    assert settings(db) == ["first", "first-2", "later", "later-2", "other", "other-2"]


def test_a_request_that_commits_nothing_leaves_nothing(db):
    plain = session_factory(db)
    factory, guard = watching(plain), ReplayGuard(plain)

    def refused():
        with unit_of_work(factory) as s:
            put(s, "never")
            raise ValueError("refused")

    for _ in range(2):
        with pytest.raises(ValueError):
            in_request(guard, str(T0), "v0=aaa", refused)
    with plain() as s:
        assert s.execute(text("SELECT COUNT(*) FROM signed_request")).scalar_one() == 0
    # sessions outside a request are plain
    with unit_of_work(factory) as s:
        put(s, "background")
    assert settings(db) == ["background"]


def test_a_request_answered_nothing_recorded_is_spent(db):
    plain = session_factory(db)
    factory, guard = watching(plain), ReplayGuard(plain)

    def burnt():
        guard.burn()  # what HandlerContext.run does (in the background) after NothingRecorded

    in_request(guard, str(T0), "v0=aaa", burnt)
    in_request(guard, str(T0), "v0=aaa", burnt)  # twice is harmless

    def work():
        with unit_of_work(factory) as s:
            put(s, "late")

    with pytest.raises(AlreadyCarriedOut):
        in_request(guard, str(T0), "v0=aaa", work)
    assert settings(db) == []


def test_digests_are_kept_for_the_window_and_the_skew_then_purged(db):
    plain = session_factory(db)
    now = [float(T0)]
    factory, guard = watching(plain), ReplayGuard(plain, wall=lambda: now[0])

    def work():
        with unit_of_work(factory) as s:
            put(s, f"k{len(settings(db))}")

    in_request(guard, str(T0), "v0=aaa", work)
    kept = SIGNATURE_WINDOW_SECONDS + CLOCK_SKEW_SECONDS
    now[0] = T0 + kept - 1  # a host whose clock is behind could still accept the replay
    assert guard.purge() == 0
    now[0] = T0 + kept + 1
    assert guard.purge() == 1
    with plain() as s:
        assert not is_recorded(s, "anything")
