"""Reminders as people read them (issue 13): `show` in words, days left that are true, a digest of its week, the
audit timeline with every field and the bot's own changes, runtime settings the planner obeys, and reminders that
follow BOT_TIMEZONE across a restart.

Time moves only through the injected ManualClock; what is asserted is what Slack received or the reply's text.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.app import create_app
from storage import repositories as repo
from storage.db import make_engine, read_only
from tests.conftest import ADMIN, MANAGER, OFFICIAL, REVIEWER, SLACK_RATE_SCALE, make_settings
from tests.e2e.test_reminders import FILE, _to_not_risky, _waiver, manager_reminders, ny, ok, sweep

PARIS = ZoneInfo("Europe/Paris")


def reply_text(running, command: str, user: str = MANAGER) -> str:  # noqa: ANN001
    """Everything a private reply says (its blocks' text, else its text)."""
    r = running.command(command, user=user)
    assert r.status == 200, r
    body = r.json
    texts = [b["text"]["text"] for b in body.get("blocks") or [] if isinstance(b.get("text"), dict)]
    texts += [e["text"] for b in body.get("blocks") or [] for e in b.get("elements") or [] if "text" in e]
    return "\n".join(str(t) for t in texts) or body["text"]


# ---- show: each pending reminder once, in words -----------------------------------------------------------


def test_show_names_each_pending_reminder_once_in_words(running):
    ok(running.command(FILE))
    _waiver(running, until="2026-12-31")
    shown = reply_text(running, "show CR-1")
    line = next(part for part in shown.split("\n") if part.startswith("*Next reminders:*"))
    for words in ("waiver report due", "waiver report overdue", "waiver expiring: 30 days left"):
        assert line.count(words + " ") == 1, (words, line)
    assert (
        "unanswered" not in line
    )  # determined: the questions' reminders will send nothing, so are not listed
    assert "waiver-report" not in shown and "waiver-expiry" not in shown  # no internal kinds
    ok(running.command("waiver-report CR-1", user=OFFICIAL))
    line = next(p for p in reply_text(running, "show CR-1").split("\n") if p.startswith("*Next reminders:*"))
    assert "waiver report" not in line  # reported: its reminders no longer apply and are not listed
    assert "waiver expiring: 30 days left" in line


def test_expiry_reminders_after_downtime_say_the_days_really_left_once(running):
    ok(running.command(FILE))
    _waiver(running, until="2026-12-31")
    ok(running.command("waiver-report CR-1", user=OFFICIAL))
    sweep(running, ny(2026, 11, 24, 10, 1))
    sweep(
        running, ny(2026, 12, 26, 9)
    )  # down from before "30 days left" (2 Dec) until after "7 days left" (25 Dec)
    expiring = [t for t in manager_reminders(running) if "waiver on *CR-1* expire" in t]
    assert len(expiring) == 1 and "(6 days left)" in expiring[0], expiring
    sweep(running, ny(2027, 1, 2, 9))  # and again past "1 day left" and the expiry itself: only "expired"
    expiring = [t for t in manager_reminders(running) if "waiver on *CR-1* expire" in t]
    assert len(expiring) == 2 and "expired after 2026-12-31" in expiring[1] and "left" not in expiring[1]


# ---- the digest ----------------------------------------------------------------------------------------------


def test_digest_covers_its_week_with_overdue_items_apart_and_each_once(running):
    # CR-1: bought for an excluded purpose in August: its §4(b) notice was due in September (overdue)
    ok(running.command("file vendor=Acme product=Probe agency=FBI purpose=excluded awarded=2026-08-01"))
    # CR-2: a waiver whose last day in force is within the coming week; CR-3 one whose last day is later
    ok(running.command(FILE))
    ok(running.command(FILE.replace("Graphite", "Pegasus")))
    for ref, until in (("CR-2", "2026-12-04"), ("CR-3", "2027-03-01")):
        ok(running.command(f'determine {ref} prohibited reason="CI-1 risk"', user=OFFICIAL))
        ok(
            running.command(
                f'waiver {ref} official="Secretary of Homeland Security" until={until} reason="national security"',
                user=OFFICIAL,
            )
        )
        ok(running.command(f"waiver-report {ref}", user=OFFICIAL))
    sweep(
        running, ny(2026, 11, 24, 10, 1)
    )  # the catch-up §4(b) reminder goes now; Monday's digest is planned
    sweep(running, ny(2026, 11, 30, 9))
    digest = next(t for t in manager_reminders(running) if "weekly digest" in t)
    assert "week of 30 Nov 2026" in digest and "2026-11-24" not in digest.split("\n")[0]
    overdue = next(line for line in digest.split("\n") if line.startswith("Overdue:"))
    week = next(line for line in digest.split("\n") if line.startswith("Deadlines this week:"))
    assert overdue == "Overdue: CR-1 §4(b) notice due (due 2026-09-15)"
    assert week == "Deadlines this week: CR-2 waiver's last day in force Fri 2026-12-04"  # CR-3's is in March
    assert digest.count("CR-1") == 1


def test_app_home_lists_the_same_deadlines_overdue_first(running):
    ok(running.command(FILE))
    _waiver(running, until="2026-11-30")  # CR-1: its 72-hour report due Friday, its last day in force Monday
    ok(
        running.command('stopwork CR-1 reason="hold"', user=MANAGER)
    )  # a stop-work is listed apart: no deadline
    ok(running.command("file vendor=Acme product=Probe agency=FBI purpose=excluded awarded=2026-08-01"))
    home = running.bot.service.dashboard(MANAGER)
    assert home.deadlines == [
        ("CR-2", "§4(b) notice due (overdue)", date(2026, 9, 15)),
        ("CR-1", "72-hour waiver report due", date(2026, 11, 27)),
        ("CR-1", "waiver's last day in force", date(2026, 11, 30)),
    ]


# ---- the audit timeline ---------------------------------------------------------------------------------------


def test_timeline_shows_the_bots_own_status_change_and_people_by_mention(running):
    ok(running.command(FILE + ' value=2000000 term="one year" contract_no=70CMSD24C0001 third_party=no'))
    ok(running.command(f"assign CR-1 <@{REVIEWER}>", user=MANAGER))
    _to_not_risky(running)
    ok(running.command("notify CR-1", user=MANAGER))
    sweep(running, ny(2026, 12, 1, 9))  # notice 24 November + 7 days: the waiting period is over
    shown = reply_text(running, "audit CR-1")
    lines = [line for line in shown.split("\n") if line.startswith("*") and ".* " in line]
    assert [int(line[1 : line.index(".")]) for line in lines] == list(
        range(1, len(lines) + 1)
    )  # 1..n, no gaps
    filing = lines[0]
    for field in (
        "vendor set to Paragon Solutions",
        "value set to $2,000,000",
        "term set to one year",
        "contract no. set to 70CMSD24C0001",
        "third party operates it set to no",
    ):
        assert field in filing, (field, filing)
    assert f"reviewers set to <@{REVIEWER}>" in shown and f"<@{REVIEWER}> *answer* (question SCOPE-1" in shown
    assert "→ —" not in shown
    bot_line = lines[-1]
    assert bot_line.split(" ", 4)[4].startswith("_contract-bot_ *status*"), bot_line
    assert "the APNSA waiting period (§2(g)) ended" in bot_line and "status: waiting → cleared" in bot_line
    with read_only(running.bot.session_factory) as s:
        entry = repo.list_audit(s, contract_id=1)[-1]
    assert (entry.actor, json.loads(entry.after or "{}")) == ("contract-bot", {"status": "cleared"})


# ---- runtime settings the planner obeys -------------------------------------------------------------------------


def test_admin_set_reminder_days_and_hour_are_obeyed(running):
    for key, value in (("unanswered_reminder_days", "3"), ("escalation_days", "4"), ("reminder_hour", "10")):
        ok(running.command(f"admin set {key} {value}", user=ADMIN))
    ok(running.command(FILE))  # Tuesday 24 November
    ok(running.command(f"assign CR-1 <@{REVIEWER}>", user=MANAGER))

    def pings() -> list[str]:
        return [m["text"] for m in running.thread(1) if "Reminder:" in m["text"]]

    def escalations() -> list[str]:
        return [t for t in manager_reminders(running) if "business day" in t and "open for" in t]

    sweep(running, ny(2026, 11, 27, 10))  # 2 business days (Wed 25, Fri 27): the default would ping now
    sweep(running, ny(2026, 11, 30, 9, 59))
    assert pings() == []
    sweep(running, ny(2026, 11, 30, 10))  # the 3rd business day (Mon 30), at the reminder hour 10:00
    assert len(pings()) == 1 and escalations() == []
    sweep(running, ny(2026, 12, 1, 9, 59))
    assert escalations() == []
    sweep(running, ny(2026, 12, 1, 10))  # the 4th: escalated, saying so
    assert len(escalations()) == 1 and "open for 4 business days" in escalations()[0]


# ---- BOT_TIMEZONE changed between restarts ----------------------------------------------------------------------


def test_pending_reminders_move_to_the_new_zones_hours_on_restart(running, database, double):
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="hold"', user=MANAGER))
    sweep(
        running, ny(2026, 11, 24, 16)
    )  # the bot runs in New York: the next ping is Wednesday 09:00 New York
    with read_only(running.bot.session_factory) as s:
        before = {r.kind: r.due_at for r in repo.list_pending_reminders(s, contract_id=1)}
    assert before["stopwork"] == ny(2026, 11, 25, 9)
    url, schema = database
    paris = create_app(
        make_settings(double, url, bot_timezone="Europe/Paris"),
        engine=make_engine(url, schema=schema),
        clock=running.clock,
        slack_rate_scale=SLACK_RATE_SCALE,
    )
    try:
        assert paris.sweeper.replan_for_zone() >= 2  # restarted in Paris: re-planned once, on start
        assert paris.sweeper.replan_for_zone() == 0
        with read_only(paris.session_factory) as s:
            after = {r.kind: r.due_at for r in repo.list_pending_reminders(s, contract_id=1)}
            digests = [r for r in repo.list_pending_reminders(s) if r.kind == "digest"]
            audit = [e for e in repo.list_audit(s) if e.action == "reminders re-planned"]
        paris9 = datetime(2026, 11, 25, 9, tzinfo=PARIS).astimezone(UTC)
        assert after["stopwork"] == paris9 and after["unanswered"].astimezone(PARIS).hour == 9
        assert len(digests) == 1 and digests[0].due_at == datetime(2026, 11, 30, 9, tzinfo=PARIS).astimezone(
            UTC
        )
        assert len(audit) == 1 and json.loads(audit[0].before or "{}") == {"BOT_TIMEZONE": "America/New_York"}
        result = paris.sweeper.sweep(paris9)
        assert any("stop-work order on *CR-1*" in text for _, text in result.messages)
    finally:
        paris.stop()
