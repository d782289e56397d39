"""Reminders end to end: every kind in SPEC's table fires once, to the right place, at the right local time.

Time moves only through the injected ManualClock; a sweep runs at the clock's time and the outbox is then
delivered to the Slack double, so what is asserted is what Slack received.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.conftest import MANAGER, MANAGERS, MEMBER, OFFICIAL, OFFICIAL2, REVIEW, REVIEWER

NY = ZoneInfo("America/New_York")
FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE purpose=operational'
ACCEPTED = re.compile(r"^(:[a-z_]+:|Filed|Assigned|Recorded|Setting)")
START_RE = re.compile(r"^(:[a-z_]+: )?Reminder:")


def ny(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    """A New York wall time as an aware UTC instant."""
    return datetime(y, m, d, hh, mm, tzinfo=NY).astimezone(UTC)


def sweep(running, when: datetime):  # noqa: ANN001, ANN201
    """Run one sweep at ``when`` and deliver what it queued; returns the sweep's result."""
    running.deliver()  # the parent messages are in Slack (so reminders can link their thread)
    running.clock.set(when)
    result = running.bot.sweeper.sweep()
    running.deliver()
    return result


def manager_reminders(running) -> list[str]:  # noqa: ANN001
    """Texts of the reminder messages in the manager channel, oldest first."""
    running.deliver()
    return [m["text"] for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]]


def thread_reminders(running, ref_id: int = 1) -> list[str]:  # noqa: ANN001
    """Texts of the reminder messages in a contract's thread."""
    return [m["text"] for m in running.thread(ref_id) if "Reminder:" in m["text"]]


def check_format(text: str, ref: str, *, link: bool = True) -> None:
    """SPEC: starts with "Reminder:" (an emoji may precede), names the contract, says what next, links the thread."""
    for part in text.split("\n\n"):
        assert START_RE.match(part), part
        if ref in part:
            assert "Next:" in part, part
            if link and "weekly digest" not in part:
                # a <url|label> link from chat.getPermalink, else the channel: never a guessed host
                assert "Thread: <https://" in part or "Thread: in <#" in part, part


def ok(r) -> None:  # noqa: ANN001
    """The command was accepted (not refused)."""
    assert r.status == 200, r
    assert ACCEPTED.match(r.json["text"]), r.json["text"]


# ---- stop-work ----------------------------------------------------------------------------------------------


def test_stopwork_pings_each_business_day_across_thanksgiving_until_resumed(running):
    running.clock.set(ny(2026, 11, 25, 10))  # Wednesday before Thanksgiving
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="DNI assessment pending"', user=MANAGER))
    running.thread(1)
    sweep(running, ny(2026, 11, 25, 23))
    sweep(running, ny(2026, 11, 26, 9))  # Thanksgiving: not a business day
    assert manager_reminders(running) == []
    sweep(running, ny(2026, 11, 27, 8, 59))
    assert manager_reminders(running) == []
    sweep(running, ny(2026, 11, 27, 9))  # Friday: the first business day after it started
    sent = manager_reminders(running)
    assert len(sent) == 1
    text = sent[0]
    assert "stop-work" in text and "*CR-1*" in text and "since 2026-11-25 (2 days)" in text
    assert "5 question(s) open: SCOPE-1" in text and "/contract resume CR-1" in text
    check_format(text, "CR-1")
    sweep(running, ny(2026, 11, 27, 15))  # same day again: nothing more
    sweep(running, ny(2026, 11, 28, 9))  # Saturday
    sweep(running, ny(2026, 11, 29, 9))  # Sunday
    assert len(manager_reminders(running)) == 1
    sweep(running, ny(2026, 11, 30, 9))  # Monday: the stop-work ping and the weekly digest, as ONE message
    sent = manager_reminders(running)
    assert len(sent) == 2
    assert "(5 days)" in sent[1] and "weekly digest" in sent[1]
    check_format(sent[1], "CR-1")
    ok(running.command('resume CR-1 reason="assessment received"', user=MANAGER))
    sweep(running, ny(2026, 12, 1, 9))
    sweep(running, ny(2026, 12, 2, 9))
    assert len(manager_reminders(running)) == 2


def test_stopwork_across_dst_change_stays_at_nine_local(running):
    running.clock.set(ny(2026, 10, 29, 11))  # Thursday; clocks fall back on Sunday 1 November
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="hold"', user=MANAGER))
    sweep(running, datetime(2026, 10, 30, 13, 0, tzinfo=UTC))  # Friday 09:00 EDT
    assert len(manager_reminders(running)) == 1
    sweep(running, datetime(2026, 11, 2, 13, 0, tzinfo=UTC))  # Monday 08:00 EST: not yet
    assert len(manager_reminders(running)) == 1
    sweep(running, datetime(2026, 11, 2, 14, 0, tzinfo=UTC))  # Monday 09:00 EST
    sent = manager_reminders(running)
    assert len(sent) == 2 and "stop-work" in sent[1] and "(4 days)" in sent[1]


def test_resumed_stopwork_sends_nothing_and_a_new_one_pings_again(running):
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="a"', user=MANAGER))
    ok(running.command('resume CR-1 reason="b"', user=MANAGER))
    ok(running.command('stopwork CR-1 reason="again"', user=MANAGER))  # same day: same ping key, pings again
    sweep(running, ny(2026, 11, 25, 9))
    sent = manager_reminders(running)
    assert len(sent) == 1 and "*CR-1*" in sent[0]
    ok(running.command('resume CR-1 reason="lifted"', user=MANAGER))
    sweep(running, ny(2026, 11, 27, 9))
    sweep(running, ny(2026, 11, 30, 9))
    assert [t for t in manager_reminders(running) if "stop-work order on" in t] == sent


def test_downtime_sends_a_missed_reminder_once(running):
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="hold"', user=MANAGER))
    sweep(running, ny(2026, 11, 24, 10, 1))  # the bot runs (and plans Monday's digest) ...
    sweep(running, ny(2026, 12, 3, 10))  # ... then is down from Tuesday to the next Thursday
    sent = manager_reminders(running)
    assert len(sent) == 1  # one message: the stop-work ping and Monday's digest, each once
    assert sent[0].count("stop-work order on *CR-1*") == 1 and sent[0].count("weekly digest") == 1
    sweep(running, ny(2026, 12, 3, 11))
    assert len(manager_reminders(running)) == 1
    sweep(running, ny(2026, 12, 4, 9))  # and the series carries on from the next business day
    assert len([t for t in manager_reminders(running) if "stop-work order on" in t]) == 2


def test_two_contracts_due_at_one_moment_go_out_as_one_message(running):
    ok(running.command(FILE))
    ok(running.command(FILE.replace("Graphite", "Pegasus")))
    ok(running.command('stopwork CR-1 reason="a"', user=MANAGER))
    ok(running.command('stopwork CR-2 reason="b"', user=MANAGER))
    sweep(running, ny(2026, 11, 25, 9))
    sent = manager_reminders(running)
    assert len(sent) == 1 and "*CR-1*" in sent[0] and "*CR-2*" in sent[0]
    check_format(sent[0], "CR-1")


# ---- questions ---------------------------------------------------------------------------------------------


def test_unanswered_pings_reviewers_in_thread_and_escalates_to_managers(running):
    ok(running.command(FILE))  # Tuesday 24 November, 10:00
    ok(running.command(f"assign CR-1 <@{REVIEWER}>", user=MANAGER))
    sweep(running, ny(2026, 11, 26, 12))  # Thanksgiving
    assert thread_reminders(running) == []
    sweep(running, ny(2026, 11, 27, 9))  # 2 business days: Wednesday and Friday
    pings = thread_reminders(running)
    assert len(pings) == 1
    assert f"<@{REVIEWER}>" in pings[0] and "*CR-1*" in pings[0] and "since 2026-11-24" in pings[0]
    check_format(pings[0], "CR-1")
    sweep(running, ny(2026, 11, 30, 9))
    assert len(thread_reminders(running)) == 1
    sweep(running, ny(2026, 12, 1, 9))  # every 2 business days: Monday, Tuesday
    assert len(thread_reminders(running)) == 2
    assert not [t for t in manager_reminders(running) if "open for 5 business days" in t]
    sweep(running, ny(2026, 12, 2, 9))  # 5 business days: escalation to the managers
    escalations = [t for t in manager_reminders(running) if "open for 5 business days" in t]
    assert len(escalations) == 1 and f"<@{REVIEWER}>" in escalations[0]
    check_format(escalations[0], "CR-1")
    for i in range(1, 6):
        ok(running.command(f"answer CR-1 SCOPE-{i} yes", user=REVIEWER))
    sweep(running, ny(2026, 12, 3, 9))  # SCOPE answered: its next ping re-checks and sends nothing
    assert len(thread_reminders(running)) == 2


def test_unanswered_ping_after_downtime_counts_two_business_days_from_the_catch_up(running):
    ok(running.command(FILE))  # Tuesday 24 November, 10:00
    ok(running.command(f"assign CR-1 <@{REVIEWER}>", user=MANAGER))
    sweep(running, ny(2026, 12, 8, 10))  # down since before the first ping (27 Nov): one catch-up ping now
    assert len(thread_reminders(running)) == 1
    sweep(running, ny(2026, 12, 9, 9))  # one business day later: not yet
    assert len(thread_reminders(running)) == 1
    sweep(running, ny(2026, 12, 10, 9))  # two business days after the catch-up
    assert len(thread_reminders(running)) == 2


# ---- waiting period ----------------------------------------------------------------------------------------


def _to_not_risky(running) -> None:  # noqa: ANN001
    svc = running.bot.service
    for qid in [f"SCOPE-{i}" for i in range(1, 6)] + [f"PROC-{i}" for i in range(1, 5)]:
        svc.answer(REVIEWER, 1, qid, "yes")
    for qid in [f"CI-{i}" for i in range(1, 5)] + [f"IU-{i}" for i in range(1, 4)]:
        svc.answer(REVIEWER, 1, qid, "no")
    ok(running.command('determine CR-1 not-risky reason="no risk found"', user=OFFICIAL))
    ok(running.command('certify CR-1 official="Secretary of Homeland Security"', user=OFFICIAL2))


def test_waiting_period_over_after_seven_days_to_thread_and_managers(running):
    ok(running.command(FILE))
    _to_not_risky(running)
    ok(running.command("notify CR-1", user=MANAGER))
    sweep(running, ny(2026, 11, 30, 23))
    assert not [t for t in thread_reminders(running) if "waiting period" in t]
    sweep(running, ny(2026, 12, 1, 9))  # notice 24 November + 7 days
    in_thread = [t for t in thread_reminders(running) if "waiting period" in t]
    to_managers = [t for t in manager_reminders(running) if "waiting period" in t]
    assert len(in_thread) == 1 and len(to_managers) == 1
    assert (
        "since the APNSA notice of 2026-11-24" in in_thread[0]
        and "operational use is now permitted" in in_thread[0]
    )
    check_format(in_thread[0], "CR-1")
    sweep(running, ny(2026, 12, 2, 9))
    assert len([t for t in thread_reminders(running) if "waiting period" in t]) == 1


def test_clearance_ends_waiting_period_on_the_next_sweep(running):
    ok(running.command(FILE))
    _to_not_risky(running)
    ok(running.command("notify CR-1", user=MANAGER))
    running.clock.set(ny(2026, 11, 25, 14))
    ok(running.command("clear CR-1", user=MANAGER))
    sweep(running, ny(2026, 11, 25, 14, 1))
    to_managers = [t for t in manager_reminders(running) if "waiting period" in t]
    assert len(to_managers) == 1 and "the APNSA cleared it on 2026-11-25" in to_managers[0]
    sweep(running, ny(2026, 12, 1, 9))  # nothing more at notice + 7 days
    assert len([t for t in manager_reminders(running) if "waiting period" in t]) == 1


# ---- waivers -----------------------------------------------------------------------------------------------


def _waiver(running, until: str = "2026-12-31") -> None:  # noqa: ANN001
    ok(running.command('determine CR-1 prohibited reason="CI-1 risk"', user=OFFICIAL))
    ok(
        running.command(
            f'waiver CR-1 official="Secretary of Homeland Security" until={until} reason="national security"',
            user=OFFICIAL,
        )
    )


def test_waiver_report_due_at_48h_and_overdue_at_72h(running):
    ok(running.command(FILE))
    _waiver(running)  # issued Tuesday 24 November 15:00 UTC
    sweep(running, datetime(2026, 11, 26, 14, 59, tzinfo=UTC))
    assert not [t for t in manager_reminders(running) if "72-hour" in t]
    sweep(running, datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    due = [t for t in manager_reminders(running) if "72-hour" in t]
    assert len(due) == 1 and " is due " in due[0] and "/contract waiver-report CR-1" in due[0]
    assert len([t for t in thread_reminders(running) if "72-hour" in t]) == 1
    check_format(due[0], "CR-1")
    sweep(running, datetime(2026, 11, 27, 15, 0, tzinfo=UTC))
    overdue = [t for t in manager_reminders(running) if "72-hour" in t]
    assert len(overdue) == 2 and "OVERDUE" in overdue[1]


def test_reported_waiver_sends_no_report_reminder(running):
    ok(running.command(FILE))
    _waiver(running)
    ok(running.command("waiver-report CR-1", user=OFFICIAL))
    sweep(running, datetime(2026, 11, 28, 15, 0, tzinfo=UTC))
    assert not [t for t in manager_reminders(running) if "72-hour" in t]


def test_revocation_starts_its_own_report_clock_and_stops_expiry_reminders(running):
    ok(running.command(FILE))
    _waiver(running)
    ok(running.command("waiver-report CR-1", user=OFFICIAL))
    running.clock.set(ny(2026, 11, 30, 10))
    ok(running.command('revoke-waiver CR-1 reason="new information"', user=OFFICIAL))
    sweep(running, ny(2026, 12, 2, 9, 59))
    assert not [t for t in manager_reminders(running) if "revocation report" in t]
    sweep(running, ny(2026, 12, 2, 10))  # 48 hours after the revocation
    texts = [t for t in manager_reminders(running) if "revocation report" in t]
    assert len(texts) == 1 and "revocation of 2026-11-30" in texts[0]
    ok(running.command("waiver-report CR-1", user=OFFICIAL))
    sweep(running, ny(2026, 12, 3, 10))  # reported: no overdue reminder
    sweep(running, ny(2026, 12, 31, 9))  # revoked: no expiry reminders
    assert len([t for t in manager_reminders(running) if "revocation report" in t]) == 1
    assert not [t for t in manager_reminders(running) if "waiver on *CR-1* expire" in t]


def test_waiver_expiring_30_7_1_days_and_expired(running):
    ok(running.command(FILE))
    _waiver(running, until="2026-12-31")
    ok(running.command("waiver-report CR-1", user=OFFICIAL))

    def expiring() -> list[str]:
        return [t for t in manager_reminders(running) if "waiver on *CR-1* expire" in t]

    for when, count in [
        (ny(2026, 12, 2, 8), 0),
        (ny(2026, 12, 2, 9), 1),
        (ny(2026, 12, 24, 9), 1),
        (ny(2026, 12, 25, 9), 2),
        (ny(2026, 12, 31, 9), 3),
        (ny(2026, 12, 31, 23, 59), 3),
        (ny(2027, 1, 1, 0), 4),
        (ny(2027, 1, 2, 9), 4),
    ]:
        sweep(running, when)
        assert len(expiring()) == count, (when, expiring())
    texts = expiring()
    assert "(30 days left)" in texts[0] and "(7 days left)" in texts[1] and "(1 day left)" in texts[2]
    assert "expired after 2026-12-31" in texts[3]
    assert len([t for t in thread_reminders(running) if "waiver on *CR-1* expire" in t]) == 4
    for text in texts:
        check_format(text, "CR-1")


# ---- §4(b) -------------------------------------------------------------------------------------------------


def test_excluded_purpose_notice_due_30_40_45_days_after_award(running):
    ok(running.command("file vendor=Acme product=Probe agency=FBI purpose=excluded awarded=2026-11-24"))

    def notices() -> list[str]:
        return [t for t in manager_reminders(running) if "§4(b)" in t]

    for when, count in [
        (ny(2026, 12, 24, 8), 0),
        (ny(2026, 12, 24, 9), 1),
        (ny(2027, 1, 3, 9), 2),
        (ny(2027, 1, 8, 9), 3),
        (ny(2027, 1, 9, 9), 3),
    ]:
        sweep(running, when)
        assert len(notices()) == count, when
    texts = notices()
    assert all("due by 2027-01-08" in t for t in texts) and "today" in texts[2]
    assert len([t for t in thread_reminders(running) if "§4(b)" in t]) == 3
    check_format(texts[0], "CR-1")


def test_backdated_award_sends_one_catch_up_notice(running):
    ok(running.command("file vendor=Acme product=Probe agency=FBI purpose=excluded awarded=2026-10-01"))
    sweep(running, ny(2026, 11, 24, 10, 1))
    sweep(running, ny(2026, 11, 25, 10))
    texts = [t for t in manager_reminders(running) if "§4(b)" in t]
    assert len(texts) == 1 and "overdue" in texts[0]


# ---- digest ------------------------------------------------------------------------------------------------


def test_weekly_digest_mondays_nine_local(running):
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="hold"', user=MANAGER))
    ok(running.command("admin set stopwork_reminders off", user="UADMIN1"))
    sweep(running, ny(2026, 11, 30, 8, 59))
    assert not [t for t in manager_reminders(running) if "weekly digest" in t]
    sweep(running, ny(2026, 11, 30, 9))
    digests = [t for t in manager_reminders(running) if "weekly digest" in t]
    assert len(digests) == 1
    assert "week of 30 Nov 2026" in digests[0] and "CR-1 since 2026-11-24" in digests[0]
    assert START_RE.match(digests[0])
    sweep(running, ny(2026, 12, 7, 9))
    assert len([t for t in manager_reminders(running) if "weekly digest" in t]) == 2


# ---- snooze ------------------------------------------------------------------------------------------------


def _snooze_value(running) -> tuple[dict, str]:  # noqa: ANN001
    msg = [m for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]][-1]
    actions = next(b for b in msg["blocks"] if b.get("type") == "actions")
    labels = [e["text"]["text"] for e in actions["elements"]]
    assert labels == ["Remind me tomorrow", "Remind me in 3 days"]
    return msg, actions["elements"][1]["value"]


def test_manager_snoozes_stopwork_reminder_three_days(running):
    ok(running.command(FILE))
    ok(running.command('stopwork CR-1 reason="hold"', user=MANAGER))
    sweep(running, ny(2026, 11, 25, 9))
    assert len(manager_reminders(running)) == 1
    msg, value = _snooze_value(running)
    refused = running.double.new_response_url()
    running.slack.block_action(
        user_id=MEMBER,
        action_id="snooze_3d",
        value=value,
        message={"ts": msg["ts"], "channel": MANAGERS},
        response_url=refused,
    )
    running.double.wait_for(
        lambda d: any("manager" in (p["body"].get("text") or "") for p in d.responses(refused))
    )
    url = running.double.new_response_url()
    r = running.slack.block_action(
        user_id=MANAGER,
        action_id="snooze_3d",
        value=value,
        message={"ts": msg["ts"], "text": msg["text"], "blocks": msg["blocks"], "channel": MANAGERS},
        response_url=url,
    )
    assert r.status == 200
    running.double.wait_for(lambda d: any("Snoozed until" in json.dumps(p["body"]) for p in d.responses(url)))
    # the reminder in the channel now says, to everyone there, until when and by whom: its buttons are gone
    shown = running.double.responses(url)[-1]["body"]
    assert shown.get("replace_original") is True
    assert f"Snoozed until Tue 1 Dec 9:00 by <@{MANAGER}>" in json.dumps(shown)
    assert (
        not [b for b in shown["blocks"] if b["type"] == "actions"] and "stop-work order on" in shown["text"]
    )
    # 3 business days from Wednesday 25 November: Friday (after Thanksgiving), Monday, Tuesday 1 December 09:00
    sweep(running, ny(2026, 11, 27, 9))
    sweep(running, ny(2026, 11, 30, 9))
    assert len([t for t in manager_reminders(running) if "stop-work order on" in t]) == 1
    sweep(running, ny(2026, 12, 1, 9))
    assert len([t for t in manager_reminders(running) if "stop-work order on" in t]) == 2
    sweep(running, ny(2026, 12, 2, 9))  # and the daily series carries on
    assert len([t for t in manager_reminders(running) if "stop-work order on" in t]) == 3


def test_manager_snoozes_one_off_reminder_until_tomorrow(running):
    ok(running.command(FILE))
    _waiver(running)
    sweep(running, datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
    msg, _ = _snooze_value(running)
    actions = next(b for b in msg["blocks"] if b.get("type") == "actions")
    url = running.double.new_response_url()
    running.slack.block_action(
        user_id=MANAGER,
        action_id="snooze_tomorrow",
        value=actions["elements"][0]["value"],
        message={"ts": msg["ts"], "channel": MANAGERS},
        response_url=url,
    )
    running.double.wait_for(
        lambda d: any("Snoozed" in (p["body"].get("text") or "") for p in d.responses(url))
    )
    sweep(running, ny(2026, 11, 27, 9))  # the snoozed "due" reminder comes back (now overdue in substance)
    texts = [t for t in manager_reminders(running) if "72-hour" in t]
    assert len(texts) == 2
    assert len(thread_reminders(running)) >= 1 and REVIEW


def test_stopwork_lifted_while_its_reminder_waited_for_slack_is_not_sent(running):
    from datetime import timedelta

    from tests.support.slack_double import Fault

    ok(running.command(FILE))
    ok(running.command(FILE.replace("Graphite", "Pegasus")))
    ok(running.command('stopwork CR-1 reason="a"', user=MANAGER))
    ok(running.command('stopwork CR-2 reason="b"', user=MANAGER))
    running.deliver()
    running.double.script("chat.postMessage", [Fault(status=503)] * 3)  # Slack is down for the first attempt
    sweep(running, ny(2026, 11, 25, 9))
    running.double.wait_for(lambda d: len([c for c in d.calls("chat.postMessage") if c.status == 503]) == 3)
    ok(running.command('resume CR-1 reason="lifted"', user=MANAGER))
    running.clock.advance(timedelta(minutes=5))
    running.deliver()
    sent = manager_reminders(running)
    assert len(sent) == 1 and "*CR-2*" in sent[0] and "CR-1" not in sent[0]
    ok(running.command('resume CR-2 reason="lifted"', user=MANAGER))
    ok(running.command('stopwork CR-2 reason="again"', user=MANAGER))
    running.deliver()
    running.double.script("chat.postMessage", [Fault(status=503)] * 3)
    sweep(running, ny(2026, 11, 27, 9))
    running.double.wait_for(lambda d: len([c for c in d.calls("chat.postMessage") if c.status == 503]) == 6)
    ok(running.command('resume CR-2 reason="lifted again"', user=MANAGER))
    running.clock.advance(timedelta(minutes=5))
    running.deliver()
    assert len(manager_reminders(running)) == 1  # nothing of it applied any more: not sent at all
