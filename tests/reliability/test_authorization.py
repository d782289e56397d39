"""Who may do what (SPEC "Who uses it"): every subcommand and every button as every role and as no role.

Each action is prepared so that it would succeed for the right role; the wrong roles are refused with a reply
naming the role, the refusal is audited, and nothing else changes. Admin alone never decides."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.domain import args
from bot.services.drafts import DraftService
from bot.services.vendors import load_list
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, OFFICIAL2, REVIEW, REVIEWER
from tests.reliability.support import (
    CLEAN_ANSWERS,
    answer_all,
    audit_rows,
    changes,
    command_reply,
    counts,
    fingerprint,
    note_form_state,
    question_ts,
    settle,
    snapshot,
)

STRANGER = "USTRANGER1"  # never seen before, no role
LISTS = Path(__file__).resolve().parent.parent / "fixtures" / "lists"  # made-up files in the lists' formats
EXTRA = "UEXTRA1"  # holds a role only so that `admin revoke` has something to take away
HELD = {
    ADMIN: "admin",
    REVIEWER: "reviewer",
    MANAGER: "manager",
    OFFICIAL: "official",
    MEMBER: None,
    STRANGER: None,
}


def _prepare(running) -> dict[str, str]:
    """Contracts in the state each action needs; returns the command text to try for every subcommand."""
    svc, today = running.bot.service, running.bot.service.today()
    until = (today + timedelta(days=90)).isoformat()

    def new(n: int) -> int:  # each a different product: the same one again would be a look-alike filing
        return svc.file_contract(MEMBER, {"vendor": "V", "product": f"P{n}", "agency": "A"}).contract_id

    (
        fresh,
        stopped,
        ready,
        determined,
        certified,
        notified,
        prohibited,
        waived,
        waived2,
        closing,
        closed,
        redo,
        secret,
        secret2,
    ) = (new(n) for n in range(14))
    # a §4(b) purchase with a draft of its notice (`sent` fingerprints the last draft)
    excluded = svc.file_contract(
        MEMBER,
        {"vendor": "V", "product": "P-excluded", "agency": "A", "purpose": "excluded", "awarded_on": today},
    ).contract_id
    DraftService(svc).draft(MANAGER, excluded, "excluded")
    # a vendor on a screening list: its contract has a possible match (M-1) for a manager to dispose of
    load_list(svc.session_factory, running.clock, "csl", (LISTS / "csl.csv").read_bytes(), today=today)
    listed = svc.file_contract(
        MEMBER, {"vendor": "Nimbus Intercept S.A.", "product": "P-listed", "agency": "A"}
    ).contract_id
    svc.restrict(MANAGER, secret2)
    svc.close(MANAGER, closed, "r")
    svc.determine(OFFICIAL, redo, "prohibited", "r")
    svc.stopwork(MANAGER, stopped, "r")
    for cid in (ready, determined, certified, notified):
        answer_all(running, cid, CLEAN_ANSWERS)
    for cid in (determined, certified, notified):  # §2(f): another official than the one who certifies
        svc.determine(OFFICIAL2, cid, "not-risky", "no red flags")
    for cid in (certified, notified):
        svc.certify(OFFICIAL, cid, "Attorney General")
    svc.notify(MANAGER, notified)
    for cid in (prohibited, waived, waived2):
        svc.determine(OFFICIAL, cid, "prohibited", "r")
    for cid in (waived, waived2):
        svc.waiver(OFFICIAL, cid, "Attorney General", today + timedelta(days=90), "r")
    svc.grant(ADMIN, EXTRA, "reviewer")
    settle(running, outbox=False)
    return {
        "file": "file vendor=V product=P agency=A anyway=yes",
        "show": f"show CR-{fresh}",
        "list": "list",
        "assign": f"assign CR-{fresh} <@{REVIEWER}>",
        "answer": f"answer CR-{fresh} SCOPE-1 yes",
        "stopwork": f'stopwork CR-{fresh} reason="r"',
        "resume": f'resume CR-{stopped} reason="r"',
        "determine": f'determine CR-{ready} not-risky reason="r"',
        "certify": f'certify CR-{determined} official="Attorney General"',
        "notify": f"notify CR-{certified}",
        "clear": f"clear CR-{notified}",
        "waiver": f'waiver CR-{prohibited} official="Attorney General" until={until} reason="r"',
        "waiver-report": f"waiver-report CR-{waived}",
        "revoke-waiver": f'revoke-waiver CR-{waived2} reason="r"',
        "close": f'close CR-{closing} reason="r"',
        "reopen": f'reopen CR-{closed} reason="r"',
        "redetermine": f'redetermine CR-{redo} reason="r"',
        # after `stopwork` above: CR-fresh's order is in effect by then
        "stopwork-extend": f'stopwork-extend CR-{fresh} until={(today + timedelta(days=120)).isoformat()} reason="r"',
        "vendor event": 'vendor event V kind=report note="n"',
        "restrict": f"restrict CR-{secret}",
        "unrestrict": f"unrestrict CR-{secret2}",
        "audit": f"audit CR-{fresh}",
        "admin grant": "admin grant <@UNEW1> reviewer",
        "admin revoke": f"admin revoke <@{EXTRA}> reviewer",
        "admin roles": "admin roles",
        "admin set": "admin set reminder_hour 10",
        "admin settings": "admin settings",
        "admin export": "admin export csv",
        "help": "help",
        "timeline": f"timeline CR-{fresh}",
        "report": "report annual",
        "draft": f"draft CR-{fresh} apnsa",
        "sent": f"sent CR-{excluded} excluded",
        "screen": f'screen CR-{listed} M-1 no-match reason="r"',
        "vendor show": "vendor show V",
        "vendor alias": 'vendor alias V alias="Vee Systems"',
        "vendor affiliate": 'vendor affiliate V other="W" relation=reseller',
    }


def _refused(words: str) -> bool:
    first = words.strip().split("\n")[0]
    return "needs the *" in first and "role" in first


# Who may do what, not the messages about it: the 17 contracts prepared for it have the bot post 200 messages to the
# review channel and its commands 200 more. At Slack's real rate (the double's and the bot's) the outbox delivers
# a few of them while the test runs instead of all of them (at the suite's 20x the test waited 13 s of its 25 for
# them, and working through them at any rate is a third of its CPU). The test does not wait for them: delivering
# writes only what the state comparison leaves out (DELIVERY_COLUMNS), so it changes no refusal's before/after.
@pytest.mark.long
@pytest.mark.slack_rate_scale(1)
def test_every_subcommand_as_every_role(running):
    tries = _prepare(running)
    assert set(tries) == set(args.COMMANDS), set(args.COMMANDS) ^ set(tries)  # every subcommand is tried
    refusals = successes = 0
    admin_refused: list[str] = []
    for name, command in args.COMMANDS.items():
        allowed = (command.role, *command.also)
        wrong = [u for u, role in HELD.items() if command.role != args.ANYONE and role not in allowed]
        right = [u for u in HELD if u not in wrong]
        # the counts and state right after the last refusal (which was just shown to change nothing but them) are
        # the next refusal's "before": read once, not twice
        known: tuple[dict, dict] | None = None
        for user in wrong:  # first the refusals, while the action is still possible
            before, state = known or (counts(running), snapshot(running))
            status, words, _ = command_reply(running, tries[name], user)
            assert status == 200 and _refused(words) and f"*{command.role}*" in words, (name, user, words)
            after, now = counts(running), snapshot(running)
            assert not changes(state, now), (name, user, changes(state, now))
            assert (
                after["refused"] == before["refused"] + 1
                and after["audit_entry"] == before["audit_entry"] + 1
            )
            known = (after, now)
            last = audit_rows(running)[-1]
            assert (last["outcome"], last["actor"]) == ("refused", user) and name.split()[-1] in last[
                "action"
            ], last
            refusals += 1
            if user == ADMIN and command.role == "official":
                admin_refused.append(name)
        for user in right if command.role == args.ANYONE else right[:1]:
            before, drafts = fingerprint(running), len(audit_rows(running, "draft"))
            status, words, _ = command_reply(running, tries[name], user)
            assert status == 200 and words and not _refused(words), (name, user, words)
            assert "went wrong" not in words and "Usage:" not in words, (name, user, words)
            # need-to-know: the stranger neither filed it, nor is assigned, nor holds a role
            if name in ("show", "audit", "timeline") and user == STRANGER:
                assert words.startswith("You may not see CR-"), (name, words)
            if name not in (
                "show",
                "list",
                "audit",
                "timeline",
                "draft",  # the Word file is built and recorded after the answer (tests/e2e/test_drafts.py)
                "vendor show",
                "help",
                "admin roles",
                "admin settings",
                "admin export",
                "report",
            ):
                assert fingerprint(running) != before, (name, user, words)  # it did take effect
            # a draft is recorded after the answer: wait, so that later refusals are the last entries
            if name == "draft":
                running.double.wait_for(lambda d, n=drafts: len(audit_rows(running, "draft")) > n, timeout=60)
            successes += 1
    settle(running, outbox=False)
    roleless = sum(1 for c in args.COMMANDS.values() if c.role == args.ANYONE)
    also = sum(len(c.also) for c in args.COMMANDS.values())  # `admin export`: managers too
    assert refusals == (len(args.COMMANDS) - roleless) * (len(HELD) - 1) - also
    assert successes == roleless * len(HELD) + (len(args.COMMANDS) - roleless)

    def the_admins_export_was_delivered(d) -> bool:  # noqa: ANN001 - the SlackDouble
        return bool(d.files())

    # uploaded after the answer, by work that may still be waiting for Slack's pace (names looked up, then the file)
    running.double.wait_for(the_admins_export_was_delivered, timeout=30)
    # separation of duties: the bootstrap admin alone cannot decide anything
    assert sorted(admin_refused) == [
        "certify",
        "determine",
        "redetermine",
        "revoke-waiver",
        "waiver",
        "waiver-report",
    ]


def _reminder_key(running) -> str:
    with running.bot.engine.connect() as conn:
        return (
            conn.execute(text("SELECT key FROM reminder WHERE status = 'pending' ORDER BY id"))
            .scalars()
            .first()
        )


@pytest.mark.long
def test_every_button_and_modal_as_every_role(running):
    cid = running.bot.service.file_contract(
        MEMBER, {"vendor": "V", "product": "P", "agency": "A"}
    ).contract_id
    settle(running)
    key = _reminder_key(running)
    assert key, "filing scheduled no reminder to snooze"
    buttons = {  # action_id -> (value, role needed, question it touches)
        "answer_yes": (f"{cid}:SCOPE-1", "reviewer"),
        "answer_no": (f"{cid}:SCOPE-2", "reviewer"),
        "answer_unknown": (f"{cid}:SCOPE-3", "reviewer"),
        "snooze_tomorrow": (key, "manager"),
        "snooze_3d": (key, "manager"),
    }
    refusals = successes = 0
    for action_id, (value, role) in buttons.items():
        for user, held in sorted(HELD.items(), key=lambda kv: kv[1] == role):  # the role holder last
            before, state = counts(running), fingerprint(running)
            url = running.double.new_response_url(channel=REVIEW, user=user)
            # an answer button is pressed on its question's message (a button acts only on that message's question)
            on = {}
            if action_id.startswith("answer"):
                on = {"message": {"ts": question_ts(running, cid, value.split(":")[1]), "channel": REVIEW}}
            r = running.slack.block_action(
                user_id=user,
                action_id=action_id,
                value=value,
                response_url=url,
                channel_id=REVIEW,
                **on,
            )
            assert r.status == 200, r.body
            if held != role:  # the refusal is audited before the private reply is sent
                running.double.wait_for(lambda d, u=url: bool(d.responses(u)))
                words = running.double.responses(url)[0]["body"]["text"]
                assert _refused(words) and f"*{role}*" in words, (action_id, user, words)
                assert fingerprint(running) == state and counts(running)["refused"] == before["refused"] + 1
                refusals += 1
            else:
                settle(running)
                replies = [p["body"].get("text") or "" for p in running.double.responses(url)]
                assert not any(_refused(t) or "went wrong" in t for t in replies), replies
                if action_id.startswith("answer_"):  # recorded silently: the question message shows it
                    qid = value.split(":")[1]
                    assert running.bot.service.show(cid).question(qid).answer == action_id.removeprefix(
                        "answer_"
                    )
                else:
                    assert replies and "noozed" in replies[0], replies
                successes += 1
    # the note modal (the "Add note" button only opens it; saving is the action)
    for user, held in sorted(HELD.items(), key=lambda kv: kv[1] == "reviewer"):
        before, state = counts(running), fingerprint(running)
        r = running.slack.view_submission(
            user_id=user,
            callback_id="add_note_modal",
            state_values=note_form_state("evidence: memo 4"),
            private_metadata=json.dumps({"contract_id": cid, "qid": "SCOPE-4"}),
        )
        assert r.status == 200
        if held != "reviewer":
            assert r.json and "*reviewer*" in r.json["errors"]["note"], r.body
            assert fingerprint(running) == state and counts(running)["refused"] == before["refused"] + 1
            refusals += 1
        else:
            assert not r.body, r.body
            assert running.bot.service.show(cid).question("SCOPE-4").note == "evidence: memo 4"
            successes += 1
    settle(running)
    assert refusals == (len(buttons) + 1) * (len(HELD) - 1) and successes == len(buttons) + 1
    refused = [r for r in audit_rows(running) if r["outcome"] == "refused"]
    assert len(refused) == refusals and {r["actor"] for r in refused} == set(
        HELD
    )  # each was refused something
