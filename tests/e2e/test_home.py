"""App Home: app_home_opened publishes the dashboard, refreshed on every open, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from slack_sdk.models.views import View

from bot.services.reviews import Dashboard
from handlers.home import build_home_view
from tests.conftest import MANAGER, MEMBER, REVIEWER

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE awarded=2026-11-02 purpose=operational'


def texts(view: dict) -> list[str]:
    """Every text object in a view's blocks."""
    out = []
    for b in view["blocks"]:
        for key in ("text", "label"):
            if isinstance(b.get(key), dict):
                out.append(b[key]["text"])
        out += [
            e["text"]
            for e in b.get("elements") or []
            if isinstance(e, dict) and isinstance(e.get("text"), str)
        ]
        out += [f["text"] for f in b.get("fields") or []]
    return out


def assert_within_slack_limits(view: dict) -> None:
    """What Slack enforces on a published Home view; the slack_sdk models validate the rest."""
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    assert all(len(t) <= 3000 for t in texts(view))
    View(**view).validate_json()  # raises on any block or field the Block Kit model rejects
    assert View(**view).to_dict()["blocks"] == view["blocks"]  # nothing the model does not know was sent


def open_home(running, user: str, previous: dict | None = None) -> dict:
    """Send app_home_opened as Slack does and wait until a new Home view is published for ``user``."""
    r = running.slack.event(
        {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": "home",
            "event_ts": "1.000001",
        }
    )
    assert r.status == 200
    old = (previous or {}).get("id")
    running.double.wait_for(lambda d: (d.home_view(user) or {}).get("id") not in (None, old))
    return running.double.home_view(user)


def dashboard(n: int, vendor: str = "Vendor") -> Dashboard:
    today = date(2026, 11, 24)
    due = datetime(2026, 11, 25, 14, tzinfo=UTC)
    return Dashboard(
        today=today,
        counts={"in-review": n, "stop-work": n, "closed": n} if n else {},
        stopworks=[(f"CR-{i}", f"{vendor} {i}", today - timedelta(days=i)) for i in range(n)],
        waiting=[(f"CR-{i}", f"{vendor} {i}", today + timedelta(days=3)) for i in range(n)],
        deadlines=[(f"CR-{i}", "stopwork", due) for i in range(n)],
        my_questions=[(f"CR-{i}", "CI-4") for i in range(n)],
        roles=("manager", "reviewer"),
    )


@pytest.mark.parametrize("n", [0, 1, 500])
def test_builder_stays_within_limits_for_any_number_of_rows(n):
    view = build_home_view(dashboard(n, vendor="V" * 200))
    assert_within_slack_limits(view)
    if n == 500:
        assert "and more" in str(view)


def test_home_shows_the_dashboard_for_no_contracts(running):
    view = open_home(running, MEMBER)
    assert_within_slack_limits(view)
    assert "none. File one with `/contract file`" in str(view)


def test_home_shows_stopworks_waiting_deadlines_and_my_questions(running):
    running.command(FILE)
    running.command("assign CR-1 <@UREVIEW1|r>", user=MANAGER)
    running.command('stopwork CR-1 reason="EO 14093 review" on=2026-11-20', user=MANAGER)
    view = open_home(running, REVIEWER)
    assert_within_slack_limits(view)
    shown = "\n".join(texts(view))
    assert "stop-work: *1*" in shown
    assert "CR-1 Paragon Solutions: since 2026-11-20 (4 days)" in shown
    assert "Deadlines: overdue, and the next 7 days" in shown  # a stop-work is listed above, not as one
    assert "CR-1 `SCOPE-1`" in shown  # the viewer's own open questions
    assert "Your roles: reviewer" in shown
    assert "CR-1 `SCOPE-1`" not in "\n".join(texts(open_home(running, MEMBER)))  # not assigned to the member


def test_home_is_refreshed_each_time_it_is_opened(running):
    first = open_home(running, MANAGER)
    assert "Open reviews:* none" in str(first)
    running.command(FILE)
    for i in range(1, 6):
        running.command(f"answer CR-1 SCOPE-{i} yes", user=REVIEWER)
    running.command('determine CR-1 prohibited reason="for the test"', user="UOFFICIAL1")
    running.command('certify CR-1 official="Secretary of Homeland Security"', user="UOFFICIAL1")
    second = open_home(running, MANAGER, previous=first)
    assert "Open reviews:* none" not in str(second)
    assert "prohibited: *1*" in str(second)


def test_waiting_period_is_listed_with_its_end_even_under_a_stopwork(running):
    running.command(FILE)
    bot = running.bot
    for qid in (
        "SCOPE-1",
        "SCOPE-2",
        "SCOPE-3",
        "SCOPE-4",
        "SCOPE-5",
        "PROC-1",
        "PROC-2",
        "PROC-3",
        "PROC-4",
        "CI-1",
        "CI-2",
        "CI-3",
        "CI-4",
        "IU-1",
        "IU-2",
        "IU-3",
    ):
        bot.service.answer(REVIEWER, 1, qid, "yes" if qid.startswith(("SCOPE", "PROC")) else "no")
    bot.service.determine("UOFFICIAL1", 1, "not-risky", "no red flags")
    bot.service.certify("UOFFICIAL2", 1, "Secretary of Homeland Security")
    bot.service.notify(MANAGER, 1)
    bot.service.stopwork(MANAGER, 1, "pause")
    view = open_home(running, MANAGER)
    shown = "\n".join(texts(view))
    assert "CR-1 Paragon Solutions: ends 2026-12-01" in shown
    assert "CR-1 Paragon Solutions: since 2026-11-24 (0 days)" in shown


# App Home with 500 contracts, not their messages: at Slack's real rate (the double's and the bot's) the bot posts
# the few messages the test's seconds allow, instead of working through the 6,000 that 500 filings queue, at 20x,
# alongside the filings (a third of the test's time on PostgreSQL).
@pytest.mark.long
@pytest.mark.slack_rate_scale(1)
def test_home_with_500_contracts_stays_within_limits(running):
    bot = running.bot
    long_vendor = "Vendor " + "x" * 190
    # one vendor: 500 names differing only in their digits would each be a fuzzy match and one more alias of the
    # first, read again by every later filing (the seeding grew with the square of the contracts)
    for i in range(500):
        bot.service.file_contract(MANAGER, {"vendor": long_vendor, "product": f"P{i}", "agency": "A"})
    for i in range(1, 31):
        bot.service.stopwork(MANAGER, i, "review")
    view = open_home(running, MANAGER)
    assert_within_slack_limits(view)
    shown = "\n".join(texts(view))
    assert "intake: *470*" in shown and "stop-work: *30*" in shown
    assert "and more" in shown


def test_the_manifests_enable_the_home_tab_and_its_event():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("slack-manifest.yml", "slack-manifest.socket-mode.yml"):
        text = (root / name).read_text(encoding="utf-8")
        assert "home_tab_enabled: true" in text, name
        assert "bot_events:\n      - app_home_opened\n" in text, name
