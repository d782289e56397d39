"""The contract's FAR clocks end to end: a stop-work order's 90 days (FAR 52.242-15), its extension and its lapse,
and the period of performance, as managers meet them in Slack (reminders, `show`, replies, the audit log)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import ADMIN, MANAGER, MANAGERS, MEMBER
from tests.support.replies import flat

NY = ZoneInfo("America/New_York")
FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'


def ny(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """A New York wall time as an aware UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=NY).astimezone(UTC)


def cmd(running, text: str, user: str = MEMBER) -> str:
    """Run a command; one ephemeral reply; its flattened text."""
    r = running.command(text, user=user)
    assert r.status == 200, text
    assert r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def sweep(running, when: datetime) -> None:
    """One reminder sweep at ``when``, delivered to the Slack double."""
    running.deliver()
    running.clock.set(when)
    running.bot.sweeper.sweep()
    running.deliver()


def lapse_reminders(running) -> list[str]:
    """The stop-work lapse parts of the manager channel's reminder messages, oldest first."""
    running.deliver()
    return [
        part
        for m in running.double.messages(MANAGERS)
        for part in m["text"].split("\n\n")
        if "Reminder: the stop-work order" in part and "laps" in part
    ]


def term_reminders(running) -> list[str]:
    running.deliver()
    return [
        part
        for m in running.double.messages(MANAGERS)
        for part in m["text"].split("\n\n")
        if "period of performance" in part and "Reminder:" in part
    ]


def test_stop_work_lapses_after_90_days_unless_extended(running):
    running.clock.set(ny(2026, 8, 4, 10))  # a Tuesday
    cmd(running, FILE)
    cmd(running, "admin set stopwork_reminders off", user=ADMIN)  # only the lapse clock speaks here
    reply = cmd(running, 'stopwork CR-1 reason="review EO 14093 compliance"', user=MANAGER)
    assert "Stop-work order on CR-1 from 2026-08-04" in reply
    shown = cmd(running, "show CR-1")
    assert "*Stop-work:* in effect since 2026-08-04 (0 days)" in shown
    assert "*Stop-work clock (FAR 52.242-15):* lapses after 2026-11-02 (90 days) unless extended" in shown
    assert "stop-work lapsing (2026-11-02)" in shown  # the next reminders say it, in words

    # 60 days after issue: Saturday 3 October, so the Friday before
    sweep(running, ny(2026, 10, 2, 8, 59))
    assert lapse_reminders(running) == []
    sweep(running, ny(2026, 10, 2, 9))
    [first] = lapse_reminders(running)
    assert first.startswith(
        ":hourglass_flowing_sand: Reminder: the stop-work order on *CR-1* lapses on 2026-11-02"
    )
    assert "(FAR 52.242-15, 90 days; 31 days left" in first
    assert '`/contract stopwork-extend CR-1 until=DATE reason="…"` or `/contract resume CR-1' in first
    assert "Thread: " in first

    # bad extensions: one clear private reply each, nothing changed
    for text, expect in (
        (
            'stopwork-extend CR-1 until=2026-11-02 reason="x"',
            "must be after the stop-work order's current lapse",
        ),
        ('stopwork-extend CR-1 until=2026-13-01 reason="x"', "until"),
        ("stopwork-extend CR-1 until=2027-01-29", "reason"),
        ('stopwork-extend CR-9 until=2027-01-29 reason="x"', "CR-9"),
    ):
        r = running.command(text, user=MANAGER)
        assert expect.lower() in r.json["text"].lower(), (text, r.json["text"])
    r = running.command('stopwork-extend CR-1 until=2027-01-29 reason="x"', user=MEMBER)
    assert "manager" in r.json["text"]

    reply = cmd(
        running, 'stopwork-extend CR-1 until=2027-01-29 reason="agreed with the contractor"', user=MANAGER
    )
    assert "extended by agreement (FAR 52.242-15) through 2027-01-29, instead of 2026-11-02" in reply
    assert "agreed with the contractor" in running.thread(1)[-1]["text"]
    with unit_of_work(running.bot.session_factory) as s:
        [entry] = [
            e
            for e in repo.list_audit(s, contract_id=1)
            if e.action == "stopwork-extend" and e.outcome == "ok"
        ]
    assert entry.actor == MANAGER and "until 2027-01-29 (was 2026-11-02)" in (entry.detail or "")
    assert '"stopwork_extended_until": "2027-01-29"' in (entry.after or "")

    # the old 80- and 90-day reminders say nothing; the new ones count down to 29 January
    sweep(running, ny(2026, 10, 23, 9))
    sweep(running, ny(2026, 11, 2, 9))
    assert len(lapse_reminders(running)) == 1
    assert "extended by agreement through 2027-01-29" in cmd(running, "show CR-1")
    sweep(running, ny(2026, 12, 30, 9))  # 30 days before the new end
    second = lapse_reminders(running)[-1]
    assert "lapses on 2027-01-29 (FAR 52.242-15, extended by agreement to 2027-01-29; 30 days left" in second

    # the bot was down from 18 January to 1 February: only the "lapsed" one speaks, once
    sweep(running, ny(2027, 2, 1, 9))
    sweep(running, ny(2027, 2, 2, 9))
    sent = lapse_reminders(running)
    assert len(sent) == 3, sent
    assert sent[-1].startswith(
        ":hourglass: Reminder: the stop-work order on *CR-1* (since 2026-08-04) lapsed on 2027-01-29"
    )
    assert "the contractor may resume work. No extension and no lift are on record" in sent[-1]
    assert "still not met: a `not-risky` determination" in sent[-1]
    # fail-safe: a lapsed order still blocks until a manager records what happened; show says so plainly
    shown = cmd(running, "show CR-1")
    assert "*Stop-work clock (FAR 52.242-15):* *lapsed on 2027-01-29* (extended by agreement)" in shown
    assert "it lapsed on 2027-01-29 under FAR 52.242-15, so the contractor may resume work" in shown
    assert "lapsed on 2027-01-29 (FAR 52.242-15): record `resume`" in flat(running.parent(1))
    assert running.bot.service.show(1).status == "stop-work"

    reply = cmd(running, 'resume CR-1 reason="contract modification"', user=MANAGER)
    assert "It had lapsed on 2027-01-29 under FAR 52.242-15, at the end of its extension." in reply
    assert "Operational use is still not permitted" in reply
    assert "Stop-work:* none in effect" in cmd(running, "show CR-1")


def test_period_of_performance_from_a_duration_or_an_end_date(running):
    running.clock.set(ny(2026, 11, 24, 10))
    reply = cmd(running, FILE + ' awarded=2026-03-02 term="1 year"')
    assert (
        "Period of performance: through 2027-03-01; managers are reminded 60, 30, 7 days before it ends."
        in reply
    )
    reply = cmd(running, 'file vendor="Intellexa S.A." product=Predator agency=DEA ends=2027-01-25')
    assert "through 2027-01-25" in reply
    reply = cmd(running, 'file vendor=NSO product=Pegasus agency=FBI term="base year plus options"')
    assert "Period of performance" not in reply  # free text stays free text, and nothing reminds of it
    reply = cmd(running, 'file vendor=Candiru product=DevilsTongue agency=DoD term="18 months"')
    assert "with no award date its end is not known" in reply
    shown = cmd(running, "show CR-1")
    assert "*Term:* 1 year" in shown and "*Period of performance:* through 2027-03-01" in shown
    assert "base year plus options" in cmd(running, "show CR-3")

    # CR-2 ends on 25 January 2027: 60 days before is Thanksgiving (the Wednesday before), 30 days before a
    # Saturday after Christmas Day (the Thursday before), 7 days before MLK Day (the Friday before)
    sweep(running, ny(2026, 11, 25, 9))
    [first] = term_reminders(running)
    assert first.startswith(":calendar: Reminder: the period of performance of *CR-2*")
    assert "ends on 2027-01-25 (61 days left)" in first and "Next:" in first
    sweep(running, ny(2026, 12, 24, 9))
    # CR-1 (through 1 March 2027): 60 days before is Thursday 31 December, a business day (New Year is the 1st)
    assert not any("*CR-1*" in t for t in term_reminders(running))
    sweep(running, ny(2026, 12, 31, 9))
    assert any("*CR-1*" in t and "ends on 2027-03-01 (60 days left)" in t for t in term_reminders(running))
    sweep(running, ny(2027, 1, 15, 9))
    cr2 = [t for t in term_reminders(running) if "*CR-2*" in t]
    assert [t.split("ends on 2027-01-25 ")[1].split(")")[0] for t in cr2] == [
        "(61 days left",
        "(32 days left",
        "(10 days left",
    ]
    # nothing for the free-text term, nor for the duration without an award date
    assert not any("*CR-3*" in t or "*CR-4*" in t for t in term_reminders(running))
