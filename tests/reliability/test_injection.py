"""User text never pings or links (SPEC Records, SLACK-FACTS F1.22-F1.23), and classification markings are refused.

Every user-supplied field carries mentions, special mentions, links and mrkdwn; then everything the bot posts
(messages, updates, thread lines, App Home, modals, response_url replies and HTTP ack bodies) is inspected."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.domain.text import unescape_slack
from tests.conftest import MANAGER, MEMBER, OFFICIAL, REVIEW, REVIEWER
from tests.reliability.support import (
    audit_rows,
    command_reply,
    counts,
    file_form_state,
    fingerprint,
    note_form_state,
    said,
    settle,
)

EVIL = "X <@U123> <@U123|boss> <!channel> <!here> <!everyone> <!subteam^S123> @channel @here <https://evil|click> <#C999|x> *bold* `tick` ~s~ _i_ &amp; Y"
SHORT_EVIL = "<@U123><!channel><!here><!everyone>@channel<https://evil|click>*b*`t`"  # fits contract_no (100)
LIVE = ("<@U123", "<!channel", "<!here", "<!everyone", "<!subteam", "<https://evil", "<#C999")
FILE_TEXT_FIELDS = ("vendor", "product", "agency", "component", "term", "parent", "contract_no", "scope")


def _field(key: str, evil: str) -> str:
    return SHORT_EVIL if key == "contract_no" else evil


def _file_text(evil: str) -> str:
    return "file " + " ".join(f'{k}="{_field(k, evil)}"' for k in FILE_TEXT_FIELDS) + " purpose=operational"


def _assert_inert(running, acks: list[dict]) -> int:
    """Nothing the bot sent renders a mention or link from user input; mrkdwn objects are verbatim."""
    checked = 0
    for where, text, obj in said(running, acks):
        checked += 1
        for live in LIVE:
            assert live not in text, f"{where} renders {live!r} live: {text[:300]!r}"
        if obj is not None and obj["type"] == "mrkdwn":
            assert obj.get("verbatim") is True, (
                f"{where}: mrkdwn text object without verbatim: {text[:200]!r}"
            )
    for call in running.double.calls():
        assert not call.params.get("link_names"), f"{call.method} asks Slack to link names"
        assert call.params.get("parse") not in ("full",), call.method
    return checked


def test_mentions_links_and_mrkdwn_in_every_field_stay_inert(running):
    acks: list[dict] = []
    tried = 0

    def cmd(text: str, user: str = MEMBER) -> str:
        nonlocal tried
        tried += 1
        status, words, ack = command_reply(running, text, user)
        assert status == 200, (text, words)
        if ack:
            acks.append(ack)
        return words

    # Slack delivers mentions as <@U…>/<!channel> tokens and typed &, <, > as entities: both forms are tried
    assert "CR-1" in cmd(_file_text(EVIL))
    typed = EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "CR-2" in cmd(_file_text(typed))
    r = running.slack.view_submission(
        user_id=MEMBER,
        callback_id="file_contract_modal",
        # a product of its own: the same vendor, product and agency as CR-2 would be asked to confirm a duplicate
        state_values=file_form_state(
            **{k: _field(k, EVIL) for k in FILE_TEXT_FIELDS if k != "product"},
            product=f"{EVIL} (form)",
            purpose="operational",
        ),
    )
    tried += 1
    assert r.status == 200 and "CR-3" in json.dumps(r.json), r.body
    acks.append(r.json)
    r = running.slack.message_shortcut(
        user_id=MEMBER,
        callback_id="file_as_contract",
        channel_id=REVIEW,
        message={"ts": "1.000001", "text": EVIL},
    )
    tried += 1
    assert r.status == 200
    settle(running)
    view = running.bot.service.show(1)
    assert (
        view.vendor == unescape_slack(EVIL) and running.bot.service.show(2).vendor == EVIL
    )  # stored as typed

    # free text of every other command and modal: notes, reasons
    assert "Recorded" in cmd(f'answer CR-1 SCOPE-1 yes note="{EVIL}"', REVIEWER)
    r = running.slack.view_submission(
        user_id=REVIEWER,
        callback_id="add_note_modal",
        state_values=note_form_state(EVIL),
        private_metadata=json.dumps({"contract_id": 1, "qid": "SCOPE-2"}),
    )
    tried += 1
    assert r.status == 200 and not r.body, r.body  # the modal closes: saved
    assert "Stop-work" in cmd(f'stopwork CR-1 reason="{EVIL}"', MANAGER)
    assert "Stop-work" in cmd(f'stopwork CR-2 reason="{EVIL}"', MANAGER)
    assert "lifted" in cmd(f'resume CR-1 reason="{EVIL}"', MANAGER)
    assert "prohibited" in cmd(f'determine CR-3 prohibited reason="{EVIL}"', OFFICIAL)
    until = (running.bot.service.today() + timedelta(days=90)).isoformat()
    assert "Waiver" in cmd(f'waiver CR-3 official="Attorney General" until={until} reason="{EVIL}"', OFFICIAL)
    assert "revoked" in cmd(f'revoke-waiver CR-3 reason="{EVIL}"', OFFICIAL)
    assert "closed" in cmd(f'close CR-1 reason="{EVIL}"', MANAGER)
    # everything that shows it back
    for text in ("show CR-1", "show CR-2", "show CR-3", "list", "audit CR-1", "audit CR-2", "audit CR-3"):
        cmd(text)
    # refusals that might echo what was typed
    for text in (
        EVIL,
        f"show {EVIL}",
        f"list {SHORT_EVIL}",
        f"help {SHORT_EVIL}",
        f"file vendor=a product=b agency=c {SHORT_EVIL}=1",
        f'file vendor=a product=b agency=c purpose="{SHORT_EVIL}"',
        f"answer CR-2 {SHORT_EVIL} yes",
        f"determine CR-2 {SHORT_EVIL} reason=x",
        f'certify CR-2 official="{SHORT_EVIL}"',
        f"admin set {SHORT_EVIL} 1",
        f"admin set review_channel {SHORT_EVIL}",
        f"assign CR-2 {SHORT_EVIL}",
        f"admin grant {SHORT_EVIL} reviewer",
        f"file vendor=a product=b agency=c awarded={SHORT_EVIL}",
        f'file vendor="{EVIL}" product=b',
    ):
        assert cmd(text, MANAGER if text.startswith(("assign", "admin")) else MEMBER)
    r = running.slack.view_submission(
        user_id=MEMBER,
        callback_id="file_contract_modal",
        state_values=file_form_state(
            vendor=EVIL, product=EVIL, agency=EVIL, value=SHORT_EVIL, awarded=SHORT_EVIL, purpose=SHORT_EVIL
        ),
    )
    tried += 1
    acks.append(r.json or {})
    # App Home, and the reminders that name the contracts (stop-work on CR-2) a few days later
    assert running.slack.event({"type": "app_home_opened", "user": MEMBER, "tab": "home"}).status == 200
    running.clock.advance(timedelta(days=3))
    running.bot.sweeper.sweep()
    assert running.slack.event({"type": "app_home_opened", "user": REVIEWER, "tab": "home"}).status == 200
    tried += 3
    settle(running)

    checked = _assert_inert(running, acks)
    everything = "\n".join(t for _, t, _ in said(running, acks))
    assert "&lt;!channel&gt;" in everything and "&lt;https://evil|click&gt;" in everything  # shown, escaped
    assert running.double.calls("views.publish") and running.double.calls("views.open")
    assert any("Reminder" in t for _, t, _ in said(running)), "no reminder was rendered"
    assert tried == 39 and checked > 200, (tried, checked)


MARKINGS = ("TOP SECRET", "SECRET//NOFORN", "(S//NF)")
REASON_COMMANDS = {
    'stopwork CR-1 reason="{m}"': MANAGER,
    'resume CR-1 reason="{m}"': MANAGER,
    'determine CR-1 prohibited reason="{m}"': OFFICIAL,
    'revoke-waiver CR-1 reason="{m}"': OFFICIAL,
    'waiver CR-1 official="Attorney General" until=2027-01-01 reason="{m}"': OFFICIAL,
    'close CR-1 reason="{m}"': MANAGER,
    'answer CR-1 SCOPE-1 yes note="{m}"': REVIEWER,
    'certify CR-1 official="{m}"': OFFICIAL,
    'waiver CR-1 official="{m}" until=2027-01-01 reason=x': OFFICIAL,
}


def test_classification_markings_are_refused_in_every_free_text_field(running):
    running.bot.service.file_contract(MEMBER, {"vendor": "V", "product": "P", "agency": "A"})
    settle(running)
    before, state = counts(running), fingerprint(running)
    tried = 0
    for marking in MARKINGS:
        text = f"ref {marking} memo 12"
        for key in FILE_TEXT_FIELDS:
            fields = {"vendor": "V", "product": "P", "agency": "A", key: text}
            status, words, _ = command_reply(
                running, "file " + " ".join(f'{k}="{v}"' for k, v in fields.items()), MEMBER
            )
            tried += 1
            assert status == 200 and "classification marking" in words, (key, marking, words)
            r = running.slack.view_submission(
                user_id=MEMBER, callback_id="file_contract_modal", state_values=file_form_state(**fields)
            )
            tried += 1
            assert r.json and r.json.get("response_action") == "errors", r.body
            assert "classification marking" in r.json["errors"].get(key, ""), (key, r.json)
        for template, user in REASON_COMMANDS.items():
            status, words, _ = command_reply(running, template.format(m=text), user)
            tried += 1
            assert status == 200 and ("classification marking" in words or "official" in words.lower()), (
                template,
                words,
            )
            assert marking not in words.replace("`", "") or "classification marking" in words
        r = running.slack.view_submission(
            user_id=REVIEWER,
            callback_id="add_note_modal",
            state_values=note_form_state(text),
            private_metadata=json.dumps({"contract_id": 1, "qid": "SCOPE-1"}),
        )
        tried += 1
        assert r.json and "classification marking" in r.json["errors"]["note"], r.body
    settle(running)
    assert tried == len(MARKINGS) * (2 * len(FILE_TEXT_FIELDS) + len(REASON_COMMANDS) + 1) == 78
    after = counts(running)
    grown = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    # Each refused attempt at an action is one audit entry, and nothing else.
    assert set(grown) <= {"audit_entry", "refused"}, grown
    assert grown.get("audit_entry", 0) == grown.get("refused", 0), grown
    assert fingerprint(running) == state  # nothing written but (at most) refusals in the audit log
    for entry in audit_rows(running)[before["audit_entry"] :]:
        assert "memo 12" not in json.dumps(entry), entry  # the refused text itself is not kept
