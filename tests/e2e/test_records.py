"""Records and people end to end over real HTTP (issue 13): `redetermine` reopens the answers and keeps every
version, `reopen` undoes a close, dated actions keep their order, out-of-scope and closed contracts are shown as
such, `assign` takes reviewers only, roles read as English, and a look-alike filing is warned about once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.domain.questions import QUESTIONS
from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, OFFICIAL2, REVIEW, REVIEWER
from tests.reliability.support import file_form_state
from tests.support.replies import flat

FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE awarded=2024-09-27 purpose=operational'
DHS = 'official="Secretary of Homeland Security"'


def cmd(running, text: str, user: str = MEMBER) -> str:
    """Run a command; assert it was one ephemeral reply; return its flattened text."""
    r = running.command(text, user=user)
    assert r.status == 200, text
    assert r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def answer_all(running, ref: int = 1, flags: tuple[str, ...] = ()) -> None:
    """A reviewer answers every question (SCOPE/PROC/MIT yes, CI/IU no unless flagged), through the service."""
    for q in QUESTIONS:
        value = "yes" if q.section in ("SCOPE", "PROC", "MIT") or q.qid in flags else "no"
        assert "Recorded" in running.bot.service.answer(REVIEWER, ref, q.qid, value).text


def audit(running, ref: int | None = 1, action: str | None = None):
    with unit_of_work(running.bot.session_factory) as s:
        entries = repo.list_audit(s, contract_id=ref)
    return [e for e in entries if action is None or e.action == action]


def question_blocks(running, qid: str, ref: int = 1) -> str:
    running.deliver()
    ts = running.bot.service.show(ref).question(qid).message_ts
    return json.dumps(running.double.message(REVIEW, ts)["blocks"])


def count_contracts(running) -> int:
    return running.bot.service.list_contracts().total


# ---- §2(j): redetermine reopens the answers until the next determination ------------------------------------


@pytest.mark.long
def test_redetermine_reopens_the_answers_and_keeps_every_version(running):
    cmd(running, FILE)
    cmd(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    answer_all(running)
    cmd(running, 'determine CR-1 not-risky reason="no red flags"', user=OFFICIAL)
    cmd(running, f"certify CR-1 {DHS}", user=OFFICIAL2)
    cmd(running, "notify CR-1", user=MANAGER)
    assert "answer_yes" not in question_blocks(running, "IU-1")  # frozen: no buttons
    refused = cmd(running, "answer CR-1 IU-1 yes", user=REVIEWER)
    assert "frozen" in refused and '`/contract redetermine CR-1 reason="…"`' in refused

    # only an official reopens them
    assert "*official* role" in cmd(running, 'redetermine CR-1 reason="new reporting"', user=MANAGER)
    line = cmd(running, 'redetermine CR-1 reason="press reports on IU-1"', user=OFFICIAL)
    assert (
        "Re-determination (§2(j)) of CR-1 opened" in line
        and f"<@{REVIEWER}>: reviewers can change the answers" in line
    )
    assert "answer_yes" in question_blocks(running, "IU-1")  # the buttons are back
    assert "already" not in cmd(running, "answer CR-1 IU-1 yes", user=REVIEWER)
    ci4 = running.bot.service.show(1).question("CI-4").message_ts
    r = running.slack.block_action(
        user_id=REVIEWER,
        action_id="answer_yes",
        value="1:CI-4",
        message={"ts": ci4, "channel": REVIEW},
        channel_id=REVIEW,
    )
    assert r.status == 200
    text = cmd(running, "show CR-1")
    assert "2 red flags (CI-4, IU-1)" in text and "`IU-1` yes" in text
    assert "Re-determination (§2(j)):* under way since 2026-11-24" in text
    # every version is on record: IU-1 no, then yes
    answers = [json.loads(e.after) for e in audit(running, action="answer") if e.outcome == "ok"]
    iu1 = [a for a in answers if a["qid"] == "IU-1"]
    assert [a["answer"] for a in iu1] == ["no", "yes"]

    # the next determination freezes them again and voids certification and notice; the same outcome may follow
    line = cmd(running, 'determine CR-1 prohibited reason="IU-1 and CI-4 confirmed"', user=OFFICIAL)
    assert "Re-determination (§2(j))" in line and "prohibited" in line
    assert "frozen" in cmd(running, "answer CR-1 IU-1 no", user=REVIEWER)
    assert "answer_yes" not in question_blocks(running, "IU-1")
    view = running.bot.service.show(1)
    assert view.state.certified_on is None and view.state.notice_on is None
    assert view.state.redetermination_on is None


# ---- reopen: a close made by mistake ---------------------------------------------------------------------------


def test_reopen_undoes_a_close_and_gives_back_its_reminders(running):
    cmd(running, FILE)
    cmd(running, 'stopwork CR-1 reason="verify compliance"', user=MANAGER)
    with unit_of_work(running.bot.session_factory) as s:
        pending = {r.key for r in repo.list_pending_reminders(s, contract_id=1)}
    assert pending
    cmd(running, 'close CR-1 reason="wrong contract"', user=MANAGER)
    with unit_of_work(running.bot.session_factory) as s:
        assert repo.list_pending_reminders(s, contract_id=1) == []
    assert "You may not see CR-2, or it does not exist" in cmd(
        running, 'reopen CR-2 reason="x"', user=MANAGER
    )
    assert "*manager* role" in cmd(running, 'reopen CR-1 reason="closed the wrong one"', user=REVIEWER)

    line = cmd(running, 'reopen CR-1 reason="closed the wrong one"', user=MANAGER)
    assert "CR-1 reopened: the close of 2026-11-24 is undone" in line and "Status: stop-work" in line
    view = running.bot.service.show(1)
    assert view.state.closed_on is None and view.status == "stop-work" and view.close_reason is None
    with unit_of_work(running.bot.session_factory) as s:
        assert {r.key for r in repo.list_pending_reminders(s, contract_id=1)} == pending
    entry = audit(running, action="reopen")[-1]
    assert entry.actor == MANAGER and "closed the wrong one" in entry.detail
    assert (
        json.loads(entry.before)["closed_on"] == "2026-11-24" and json.loads(entry.after)["closed_on"] is None
    )
    assert "reopened" in running.thread(1)[-1]["text"]
    assert "not closed" in cmd(running, 'reopen CR-1 reason="again"', user=MANAGER)


# ---- dates: every dated action after the event it depends on -----------------------------------------------


def test_out_of_order_dates_are_refused_and_change_nothing(running):
    cmd(running, FILE)
    cmd(running, 'stopwork CR-1 reason="verify" on=2024-10-08', user=MANAGER)
    line = cmd(running, 'resume CR-1 reason="done" on=2025-01-10', user=MANAGER)
    # lifting a stop-work is not a compliance finding: the reply and the audit say what is still missing
    assert "94 days" in line and "Operational use is still not permitted: a `not-risky` determination" in line
    assert "still not permitted" in audit(running, action="resume")[-1].detail
    before = len(audit(running))
    text = cmd(running, 'stopwork CR-1 reason="again" on=2024-12-01', user=MANAGER)
    assert "inside (or before) the previous stop-work order" in text and "lifted on 2025-01-10" in text
    cmd(running, 'determine CR-1 prohibited reason="IU-1" on=2025-03-01', user=OFFICIAL)
    text = cmd(running, 'close CR-1 reason="done" on=2025-02-01', user=MANAGER)
    assert "before the determination (2025-03-01)" in text
    view = running.bot.service.show(1)
    assert view.state.stopwork_since is None and view.state.closed_on is None
    refusals = [e for e in audit(running)[before:] if e.outcome == "refused"]
    assert len(refusals) == 2
    # still allowed: a determination recorded before the award
    cmd(running, "file vendor=NSO product=Pegasus agency=FBI awarded=2025-06-01")
    assert "Determination (§2(a))" in cmd(
        running, 'determine CR-2 prohibited reason="CI-1" on=2025-05-01', user=OFFICIAL
    )


def test_a_waiver_issued_late_in_the_day_lasts_one_year_by_the_local_calendar(running):
    # 23:30 in New York on 2026-11-24 is already 2026-11-25 in UTC
    running.clock.set(datetime(2026, 11, 25, 4, 30, tzinfo=UTC))
    cmd(running, FILE)
    cmd(running, 'determine CR-1 prohibited reason="IU-1"', user=OFFICIAL)
    waiver = f'waiver CR-1 {DHS} reason="extraordinary circumstances"'
    assert "at most one year" in cmd(running, f"{waiver} until=2027-11-25", user=OFFICIAL)
    line = cmd(running, f"{waiver} until=2027-11-24", user=OFFICIAL)
    assert "issued 2026-11-24, in force through 2027-11-24" in line


# ---- out of scope and closed are shown as such -------------------------------------------------------------


def test_out_of_scope_and_closed_contracts_are_shown_as_such(running):
    cmd(running, FILE)
    cmd(running, "answer CR-1 SCOPE-1 no", user=REVIEWER)
    cmd(running, 'determine CR-1 out-of-scope reason="not spyware"', user=OFFICIAL)
    text = cmd(running, "show CR-1")
    assert "The order does not apply (out of scope)" in text
    assert "not permitted" not in text and "Still missing" not in text
    assert (
        "*Operational use:* the order does not apply (out of scope)"
        in running.parent(1)["blocks"][0]["text"]["text"]
    )
    cmd(running, 'close CR-1 reason="closed out"', user=MANAGER)
    text = cmd(running, "show CR-1")
    assert "Closed on 2026-11-24" in text and "not permitted" not in text and "Still missing" not in text
    assert "*Operational use:* closed on 2026-11-24" in running.parent(1)["blocks"][0]["text"]["text"]


# ---- people: assign takes reviewers, roles read as English -------------------------------------------------


def test_assign_refuses_someone_who_is_not_a_reviewer(running):
    cmd(running, FILE)
    thread_before = len(running.thread(1))
    text = cmd(running, f"assign CR-1 <@{REVIEWER}> <@{MEMBER}>", user=MANAGER)
    assert f"<@{MEMBER}> is not a reviewer" in text
    assert f"`/contract admin grant <@{MEMBER}> reviewer`" in text
    assert running.bot.service.show(1).reviewers == ()
    assert len(running.thread(1)) == thread_before  # nobody was told to answer
    assert "Assigned" in cmd(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)


def test_role_replies_use_the_right_article_and_the_real_mention(running):
    assert f"<@{MEMBER}> is now an official." in cmd(running, f"admin grant <@{MEMBER}> official", user=ADMIN)
    assert f"<@{MEMBER}> is now an admin." in cmd(running, f"admin grant <@{MEMBER}> admin", user=ADMIN)
    assert f"<@{MEMBER}> is no longer an official." in cmd(
        running, f"admin revoke <@{MEMBER}> official", user=ADMIN
    )
    assert f"<@{MEMBER}> is now a manager." in cmd(running, f"admin grant <@{MEMBER}> manager", user=ADMIN)
    cmd(running, FILE)
    text = cmd(running, "answer CR-1 SCOPE-1 yes", user=MEMBER)
    assert f"`/contract admin grant <@{MEMBER}> reviewer`" in text and "@you" not in text


def test_nobody_changes_their_own_roles_and_the_last_admin_stays(running):
    before = len(audit(running, None))
    assert "Nobody can grant a role for themself" in cmd(
        running, f"admin grant <@{ADMIN}> official", user=ADMIN
    )
    assert "Nobody can revoke a role for themself" in cmd(
        running, f"admin revoke <@{ADMIN}> admin", user=ADMIN
    )
    assert [e.outcome for e in audit(running, None)[before:]] == ["refused", "refused"]
    # another admin's role is another matter (and the last admin is kept: nobody revokes their own)
    cmd(running, f"admin grant <@{MEMBER}> admin", user=ADMIN)
    assert "is no longer an admin" in cmd(running, f"admin revoke <@{MEMBER}> admin", user=ADMIN)


def test_revoking_a_reviewer_names_the_contracts_they_are_still_assigned_to(running):
    cmd(running, FILE)
    cmd(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    text = cmd(running, f"admin revoke <@{REVIEWER}> reviewer", user=ADMIN)
    assert (
        "is no longer a reviewer" in text and "still assigned to CR-1 and can no longer answer there" in text
    )


# ---- a look-alike filing: warned once, filed only on purpose, once ----------------------------------------


def test_a_look_alike_filing_is_warned_about_and_filed_only_on_purpose(running):
    cmd(
        running, FILE
    )  # by the member who files again: a look-alike they may not read is not named (need-to-know)
    r = running.command('file vendor="paragon  solutions," product=GRAPHITE agency="ice" value=5')
    text = flat(r.json)
    assert "This looks like *CR-1* (filed 2026-11-24 by" in text and "Nothing was filed" in text
    assert count_contracts(running) == 1
    button = next(
        e
        for b in r.json["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == "File anyway"
    )
    # a double click files one contract, with the values typed
    urls = [running.double.new_response_url(channel=REVIEW, user=MEMBER) for _ in range(2)]
    for url in urls:
        press = running.slack.block_action(
            user_id=MEMBER,
            action_id=button["action_id"],
            value=button["value"],
            channel_id=REVIEW,
            response_url=url,
        )
        assert press.status == 200
    running.double.wait_for(lambda d: all(d.responses(u) for u in urls), timeout=10)
    assert "Filed *CR-2*" in running.double.responses(urls[0])[0]["body"]["text"]
    assert "CR-2 was already filed" in running.double.responses(urls[1])[0]["body"]["text"]
    assert count_contracts(running) == 2 and running.bot.service.show(2).value_cents == 500
    # a changed product is not a look-alike; anyway=yes files at once
    assert "Filed *CR-3*" in cmd(running, 'file vendor="Paragon Solutions" product=Other agency=ICE')
    assert "Filed *CR-4*" in cmd(running, f"{FILE} anyway=yes")
    # a closed contract is not in the way
    for ref in (1, 2, 4):
        cmd(running, f'close CR-{ref} reason="done"', user=MANAGER)
    assert "Filed *CR-5*" in cmd(running, FILE)


def test_the_form_warns_of_a_look_alike_once_then_files_on_a_second_submit(running):
    cmd(running, FILE)
    state = file_form_state(vendor="Paragon Solutions", product="Graphite", agency="ICE")
    first = running.slack.view_submission(
        user_id=MEMBER, callback_id="file_contract_modal", state_values=state, view_id="VLOOKALIKE1"
    )
    assert first.json["response_action"] == "errors"
    assert "looks like CR-1 (filed 2026-11-24)" in first.json["errors"]["vendor"]
    assert "Submit again" in first.json["errors"]["vendor"] and count_contracts(running) == 1
    second = running.slack.view_submission(
        user_id=MEMBER, callback_id="file_contract_modal", state_values=state, view_id="VLOOKALIKE1"
    )
    assert second.json["response_action"] == "update" and count_contracts(running) == 2
