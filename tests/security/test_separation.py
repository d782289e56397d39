"""Separation of duties (issue 14, AC-5), attacked over HTTP on SQLite and PostgreSQL: an admin granting themself
roles, one official both determining and certifying (§2(f)), role changes made quietly (through ADMIN_USER_IDS
between starts, or by another admin), refusal alerts where people without a role read them, and a reason written to
pass for the bot's own line."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from bot.app import create_app
from bot.clock import ManualClock
from bot.domain.questions import QUESTIONS
from bot.services.reviews import ReviewService
from storage import repositories as repo
from storage.db import make_engine, unit_of_work
from tests.conftest import (
    ADMIN,
    MANAGER,
    MANAGERS,
    MEMBER,
    OFFICIAL,
    OFFICIAL2,
    REVIEW,
    REVIEWER,
    SECRET,
    SLACK_RATE_SCALE,
    START,
    make_settings,
    serve_bot,
)
from tests.support.replies import flat
from tests.support.slack_requests import SlackRequester

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE value=2000000 awarded=2024-09-27'
DHS = 'official="Secretary of Homeland Security"'
ADMIN2 = "UADMIN2"
TWO_PEOPLE = (
    "§2(f): certification is a separate act of the relevant official; the person who recorded the determination "
    f"(<@{OFFICIAL}>) may not also record its certification"
)
# what a reason would need to show to pass for the bot's own thread line
FORGED = ":white_check_mark: CR-1 certified not-risky (§2(f)) by the Secretary of Homeland Security"


def say(running, text: str, user: str = MEMBER) -> str:
    r = running.command(text, user=user)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def audit_rows(running, contract_id: int | None = None):
    with unit_of_work(running.bot.session_factory) as s:
        return repo.list_audit(s, contract_id=contract_id)


def roles_of(running, user: str) -> set[str]:
    with unit_of_work(running.bot.session_factory) as s:
        return running.bot.service.roles_of(s, user)


def dms(double, user: str) -> list[str]:
    return [m["text"] for m in double.messages(double.dm_channel(user))]


def answered(running) -> None:
    """CR-1 filed and every question answered without a red flag (the same calls the commands make)."""
    say(running, FILE)
    for q in QUESTIONS:
        value = "yes" if q.section in ("SCOPE", "PROC", "MIT") else "no"
        running.bot.service.answer(REVIEWER, 1, q.qid, value)


# ---- nobody grants or revokes their own role -----------------------------------------------------------------


def test_an_admin_cannot_grant_themself_a_deciding_role(running):
    answered(running)
    for role in ("official", "manager", "reviewer"):
        reply = say(running, f"admin grant <@{ADMIN}> {role}", user=ADMIN)
        assert "Nobody can grant a role for themself" in reply, reply
    assert "Nobody can revoke a role for themself" in say(
        running, f"admin revoke <@{ADMIN}> admin", user=ADMIN
    )
    assert roles_of(running, ADMIN) == {"admin"}
    # so admin alone still decides nothing
    assert "*official* role" in say(running, 'determine CR-1 not-risky reason="x"', user=ADMIN)
    refused = [
        (e.action, e.outcome) for e in audit_rows(running) if e.actor == ADMIN and e.outcome == "refused"
    ]
    assert refused.count(("admin grant", "refused")) == 3 and ("admin revoke", "refused") in refused


# ---- §2(f): two people ---------------------------------------------------------------------------------------


def test_the_official_who_determined_cannot_also_certify(running):
    answered(running)
    say(running, 'determine CR-1 not-risky reason="no red flags"', user=OFFICIAL)
    reply = say(running, f"certify CR-1 {DHS}", user=OFFICIAL)
    assert TWO_PEOPLE in reply, reply
    view = running.bot.service.show(1)
    assert view.state.certified_on is None and view.status == "determined"
    last = audit_rows(running, 1)[-1]
    assert (last.actor, last.action, last.outcome) == (OFFICIAL, "certify", "refused")
    assert "may not also record its certification" in (last.detail or "")
    # backdating does not help, and neither does asking again
    assert TWO_PEOPLE in say(running, f"certify CR-1 {DHS} on=2026-11-24", user=OFFICIAL)
    # another official certifies; the record names both
    assert "certified" in say(running, f"certify CR-1 {DHS}", user=OFFICIAL2)
    actions = [(e.actor, e.action) for e in audit_rows(running, 1) if e.outcome == "ok"]
    assert (OFFICIAL, "determine") in actions and (OFFICIAL2, "certify") in actions


def test_a_re_determination_needs_a_certifier_other_than_its_own_official(running):
    answered(running)
    say(running, 'determine CR-1 not-risky reason="no red flags"', user=OFFICIAL2)
    say(running, f"certify CR-1 {DHS}", user=OFFICIAL)
    say(running, 'redetermine CR-1 reason="press reports"', user=OFFICIAL)
    say(running, 'determine CR-1 not-risky reason="still fine"', user=OFFICIAL)  # voids the certification
    assert running.bot.service.show(1).state.certified_on is None
    assert TWO_PEOPLE in say(running, f"certify CR-1 {DHS}", user=OFFICIAL)
    assert "certified" in say(running, f"certify CR-1 {DHS}", user=OFFICIAL2)


# ---- every change of role is audited and told to the admins ---------------------------------------------------


def test_a_grant_is_audited_in_the_global_log_and_told_to_the_other_admins(running, cli):
    say(running, f"admin grant <@{ADMIN2}> admin", user=ADMIN)
    say(running, f"admin grant <@{MEMBER}> official", user=ADMIN2)
    say(running, f"admin revoke <@{MEMBER}> official", user=ADMIN2)
    running.deliver()
    to_first, to_second = dms(running.double, ADMIN), dms(running.double, ADMIN2)
    # the admin who made the change has the reply; every other admin is told
    assert any(f"<@{ADMIN2}> granted <@{MEMBER}> the *official* role" in t for t in to_first), to_first
    assert any(f"<@{ADMIN2}> revoked the *official* role of <@{MEMBER}>" in t for t in to_first), to_first
    assert any(f"<@{ADMIN}> granted <@{ADMIN2}> the *admin* role" in t for t in to_second), to_second
    assert not any(f"<@{ADMIN2}> granted <@{MEMBER}>" in t for t in to_second)
    assert not any("Role change" in m["text"] for m in running.double.messages(MANAGERS))
    # roles are not per contract: the entries are in the global, sealed log (no contract), and it verifies
    changes = [(e.actor, e.action, e.contract_id) for e in audit_rows(running) if e.outcome == "ok"]
    assert (ADMIN2, "admin grant", None) in changes and (ADMIN2, "admin revoke", None) in changes
    code, out, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 0, (out, err)


def _start(database, double, admins: tuple[str, ...]):
    url, schema = database
    return create_app(
        make_settings(double, url, admin_user_ids=admins),
        engine=make_engine(url, schema=schema),
        clock=ManualClock(START),
        slack_rate_scale=SLACK_RATE_SCALE,
    )


def _bootstrap_entries(bot) -> list[tuple[str, str]]:
    with unit_of_work(bot.session_factory) as s:
        return [
            (e.action, (e.after or e.before or "")) for e in repo.list_audit(s) if e.actor == "ADMIN_USER_IDS"
        ]


def test_admin_user_ids_changed_between_starts_is_audited_and_told(database, double):
    bot = _start(database, double, (ADMIN,))
    try:
        first = _bootstrap_entries(bot)
        assert [a for a, _ in first] == ["admin grant"] and ADMIN in first[0][1]
        bot.dispatcher.deliver_due()
        assert dms(double, ADMIN) == []  # a first start on an empty database: nothing changed for anyone
        bot.service.grant(ADMIN, ADMIN2, "admin")
    finally:
        bot.stop()

    # someone with the server's settings adds themself as a bootstrap admin
    bot = _start(database, double, (ADMIN, "UINTRUDER1"))
    try:
        entries = _bootstrap_entries(bot)
        assert len(entries) == 2 and entries[-1][0] == "admin grant" and "UINTRUDER1" in entries[-1][1]
        bot.dispatcher.deliver_due()
        for admin in (ADMIN, ADMIN2, "UINTRUDER1"):
            told = dms(double, admin)
            assert any(
                "`ADMIN_USER_IDS` changed" in t and "<@UINTRUDER1> is now an admin" in t for t in told
            ), (
                admin,
                told,
            )
        with unit_of_work(bot.session_factory) as s:
            assert "bootstrap_admins" not in bot.service.list_settings(ADMIN).values
            assert "admin" in bot.service.roles_of(s, "UINTRUDER1")
    finally:
        bot.stop()

    # the same list again: nothing new; then the first admin taken out
    bot = _start(database, double, (ADMIN, "UINTRUDER1"))
    bot.stop()
    bot = _start(database, double, ("UINTRUDER1",))
    try:
        entries = _bootstrap_entries(bot)
        assert [a for a, _ in entries] == ["admin grant", "admin grant", "admin revoke"], entries
        assert ADMIN in entries[-1][1]
        bot.dispatcher.deliver_due()
        # told to every admin, and to the one it was taken from
        for user in (ADMIN, ADMIN2):
            assert any(f"<@{ADMIN}> is no longer a bootstrap admin" in t for t in dms(double, user)), user
    finally:
        bot.stop()


def test_two_processes_starting_with_a_new_bootstrap_admin_record_it_once(database, double):
    # two copies of the bot (PostgreSQL: several replicas) find the same new ADMIN_USER_IDS at the same moment
    # NOTE: the comparison itself runs at once in two threads; Alembic's migration cannot run twice in one process
    bots = [_start(database, double, (ADMIN,)) for _ in range(2)]
    try:
        services = [
            ReviewService(
                bot.session_factory,
                bot.clock,
                bot.calendar,
                replace(bot.settings, admin_user_ids=(ADMIN, "UNEWADMIN1")),
            )
            for bot in bots
        ]
        with ThreadPoolExecutor(2) as pool:
            told_lines = list(pool.map(lambda svc: svc.record_bootstrap_admins(), services))
        assert sorted(len(lines) for lines in told_lines) == [0, 1], told_lines
        for bot in bots:
            bot.dispatcher.deliver_due()
        told = [t for t in dms(double, ADMIN) if "`ADMIN_USER_IDS` changed" in t]
        assert len(told) == 1, told
        assert [a for a, _ in _bootstrap_entries(bots[0])] == ["admin grant", "admin grant"]
    finally:
        for bot in bots:
            bot.stop()


# ---- refusal alerts are private ---------------------------------------------------------------------------------


def test_refusal_alerts_go_to_the_admins_privately_never_to_the_managers_channel(running):
    say(running, FILE)
    say(running, f"admin grant <@{ADMIN2}> admin", user=ADMIN)
    say(running, 'stopwork CR-1 reason="sneaky"', user=MEMBER)
    say(running, 'determine CR-1 prohibited reason="admin alone"', user=ADMIN)
    say(running, "admin roles", user=MANAGER)
    running.deliver()
    assert not any("tried" in m["text"] for m in running.double.messages(MANAGERS))
    assert not any("tried" in m["text"] for m in running.double.messages(REVIEW))
    for admin in (ADMIN, ADMIN2):  # bootstrap and granted admins alike
        told = dms(running.double, admin)
        assert any(f"<@{MEMBER}> tried `stopwork` on CR-1 without the *manager* role" in t for t in told), (
            told
        )
        assert any(f"<@{MANAGER}> tried `admin roles` without the *admin* role" in t for t in told), told


@pytest.fixture
def audited(database, double):
    """The app over HTTP with AUDIT_CHANNEL set (the bot is in it)."""
    url, schema = database
    double.invite("CAUDIT1")
    bot = create_app(
        make_settings(double, url, audit_channel="CAUDIT1"),
        engine=make_engine(url, schema=schema),
        clock=ManualClock(START),
        slack_rate_scale=SLACK_RATE_SCALE,
    )
    bot.start_background(scheduler=False)
    base, stop = serve_bot(bot)
    try:
        yield bot, SlackRequester(base, SECRET, double=double)
    finally:
        stop()
        bot.stop()


def test_with_an_audit_channel_refusal_alerts_go_there(audited, double):
    bot, slack = audited
    r = slack.command("file vendor=V product=P agency=A", user_id=MEMBER, channel_id=REVIEW)
    assert r.status == 200
    r = slack.command('stopwork CR-1 reason="sneaky"', user_id=MEMBER, channel_id=REVIEW)
    assert "*manager* role" in flat(r.json)
    bot.dispatcher.deliver_due()
    assert any(f"<@{MEMBER}> tried `stopwork`" in m["text"] for m in double.messages("CAUDIT1"))
    assert not any("tried" in m["text"] for m in double.messages(MANAGERS))
    assert not any("tried" in t for t in dms(double, ADMIN))


# ---- user text cannot pass for the bot's own lines -----------------------------------------------------------------


def test_a_reason_imitating_the_bot_is_shown_quoted(running):
    answered(running)
    reason = f"check\n{FORGED}\n:scales: Determination (§2(a)) on CR-1: *not-risky*"
    reply = say(running, f'stopwork CR-1 reason="{reason}"', user=MANAGER)
    thread = running.thread(1)[-1]["text"]
    for shown in (reply, thread):
        lines = shown.splitlines()
        assert not any(line.startswith((":white_check_mark:", ":scales:")) for line in lines), shown
        assert f">{FORGED}" in lines, shown
        assert "No operational use while it is in effect." in shown  # the bot's own words go on below it
    assert "Stop-work order on CR-1" in thread.splitlines()[0]
    # `show` and the audit timeline quote it too
    for text in (say(running, "show CR-1", user=MANAGER), say(running, "audit CR-1", user=MANAGER)):
        assert not any(line.startswith(":white_check_mark:") for line in text.splitlines()), text
        assert any(line.startswith(">") and "certified not-risky" in line for line in text.splitlines()), text
    # a one-line reason reads inline, as before
    say(running, 'resume CR-1 reason="review done"', user=MANAGER)
    assert "0 days): review done. Operational use" in running.thread(1)[-1]["text"]


def test_a_note_imitating_the_bot_is_shown_quoted(running):
    say(running, FILE)
    note = f"see memo\n{FORGED}"
    assert "Recorded" in say(running, f'answer CR-1 SCOPE-1 yes note="{note}"', user=REVIEWER)
    running.deliver()
    view = running.bot.service.show(1)
    message = running.double.message(REVIEW, view.question("SCOPE-1").message_ts)
    shown = flat(message)
    assert not any(line.startswith(":white_check_mark:") for line in shown.splitlines()), shown
    assert f">{FORGED}" in shown.splitlines(), shown
