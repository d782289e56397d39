"""Sizes and links end to end: long answers page (`audit`, `list`, App Home) with a More button, every reply and
message stays within Slack's limits, and thread links are Slack's own permalinks, never a guessed slack.com host.

Long histories are built through the service and the repositories (402 audit entries, 45 contracts), not through
hundreds of HTTP requests; what is asserted is what the bot answers over HTTP and what the Slack double received.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlalchemy import text

from handlers import limits
from handlers.ids import ActionId
from storage import repositories as repo
from storage.db import unit_of_work
from storage.models import Contract, RoleGrant
from tests.conftest import ADMIN, MANAGER, MANAGERS, MEMBER, OFFICIAL, REVIEW, REVIEWER, SLACK_RATE_SCALE
from tests.support.replies import flat
from tests.support.slack_double import SlackDouble

GOV = (
    "https://agency.slack-gov.com/"  # a GovSlack-like workspace: its permalinks are not on slack.com (F1.30)
)
SHORTENED = "was too long for one Slack message"
POSITION = re.compile(r"\*(\d+)\.\* ")
MONDAY_9 = datetime(2026, 11, 30, 9, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


@pytest.fixture
def double():
    """The strict Slack double of conftest, for a workspace whose host is not slack.com."""
    with SlackDouble(rate_scale=SLACK_RATE_SCALE, invited=(REVIEW, MANAGERS), workspace_url=GOV) as d:
        yield d
        refused = d.unexpected_refusals()
        assert not refused, [(r.method, r.error, r.detail[:200]) for r in refused]


# ---- helpers ---------------------------------------------------------------------------------------------------


def within_limits(message: dict, surface: limits.Surface = "message") -> None:
    """What Slack enforces, by our budget helper and by slack_sdk's own Block Kit models; and nothing shortened."""
    assert limits.problems(message, surface) == [], limits.problems(message, surface)
    assert SHORTENED not in json.dumps(message)
    if surface != "message":
        View(**message).validate_json()
        return
    assert len(message.get("text") or "") <= 4000
    parsed = Block.parse_all(message.get("blocks") or [])
    for block in parsed:
        block.validate_json()
    assert [b.to_dict() for b in parsed] == (message.get("blocks") or [])


def reply(running, command: str, user: str = MEMBER) -> dict:
    """The private answer to a `/contract` command (the acknowledgement's body), checked against Slack's limits."""
    r = running.command(command, user=user)
    assert r.status == 200 and r.json is not None, (command, r.status, r.body[:300])
    assert r.json.get("response_type") == "ephemeral", r.json
    body = {k: v for k, v in r.json.items() if k != "response_type"}
    within_limits(body)
    return body


def buttons(message: dict) -> list[dict]:
    return [
        e for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b.get("elements") or []
    ]


def more_of(message: dict) -> dict | None:
    found = [b for b in buttons(message) if b["action_id"] in (ActionId.AUDIT_MORE, ActionId.LIST_MORE)]
    assert len(found) <= 1
    return found[0] if found else None


def press(running, action_id: str, value: str, user: str = MEMBER) -> dict:
    """Click a button in a private reply: exactly one private answer comes through its response_url."""
    url = running.double.new_response_url(channel=REVIEW, user=user)
    r = running.slack.block_action(
        user_id=user, action_id=action_id, value=value, block_id="more", channel_id=REVIEW, response_url=url
    )
    assert r.status == 200 and not r.body.strip(), r.body  # the acknowledgement shows nothing
    assert running.double.wait_for(lambda d: d.responses(url), timeout=15), f"no reply to {action_id} {value}"
    time.sleep(0.15)  # a second reply would have come by now
    answers = running.double.responses(url)
    assert len(answers) == 1, answers
    body = answers[0]["body"]
    assert body.get("response_type") == "ephemeral" and not body.get("replace_original")
    message = {k: v for k, v in body.items() if k in ("text", "blocks") and v is not None}
    within_limits(message)
    return message


def positions(message: dict) -> list[int]:
    return [int(p) for p in POSITION.findall(flat({"blocks": message.get("blocks") or []}))]


def db_counts(running) -> dict[str, int]:
    with running.bot.engine.connect() as conn:
        return {
            t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()  # noqa: S608 - fixed table names
            for t in ("contract", "audit_entry", "outbox", "reminder", "question", "assignment", "role_grant")
        }


def settle_outbox(running, timeout: float = 30.0) -> None:
    """Deliver until nothing is pending (the outbox is paced, so this may take a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running.deliver()
        with running.bot.engine.connect() as conn:
            if not conn.execute(text("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")).scalar_one():
                return
        time.sleep(0.05)
    raise AssertionError("the outbox did not empty")


def sweep(running, when: datetime) -> None:
    """One reminder sweep at ``when``, delivered to the double (as tests/e2e/test_reminders.py does)."""
    running.deliver()
    running.clock.set(when)
    running.bot.sweeper.sweep()
    running.deliver()


def file_quickly(running, vendor: str = "Paragon Solutions") -> int:
    done = running.bot.service.file_contract(
        MEMBER, {"vendor": vendor, "product": "Graphite", "agency": "ICE", "purpose": "operational"}
    )
    assert done.contract_id is not None
    return done.contract_id


def long_history(running) -> int:
    """CR-1 with 402 audit entries: filed, 400 answers written straight to the log, then a real stop-work."""
    cid = file_quickly(running)
    now = running.clock.now()
    with unit_of_work(running.bot.session_factory) as s:
        for i in range(400):
            repo.record_audit(
                s,
                at=now,
                actor=REVIEWER,
                action="answer",
                contract_id=cid,
                before={"answer": None},
                after={"qid": f"CI-{i % 4 + 1}", "answer": "yes" if i % 2 else "no", "n": i},
            )
    running.bot.service.stopwork(MANAGER, cid, "the latest stop-work", None)
    return cid


def many_contracts(running, n: int) -> None:
    """``n`` contracts written straight to the database (no thread to post): CR-1 … CR-n, every third stopped."""
    now = running.clock.now()
    with unit_of_work(running.bot.session_factory) as s:
        for i in range(1, n + 1):
            stopped = i % 3 == 0
            repo.add_contract(
                s,
                Contract(
                    vendor=f"Vendor {i}",
                    product=f"Product {i}",
                    agency="ICE",
                    filed_by=MEMBER,
                    filed_at=now,
                    status="stop-work" if stopped else "intake",
                    channel_id=REVIEW,
                    stopwork_since=now.date() if stopped else None,
                    stopwork_reason="r" if stopped else None,
                ),
            )


# ---- audit: 402 entries, paged, the newest on page 1 ----------------------------------------------------------------


def test_audit_of_402_entries_pages_with_counts_and_the_newest_first(running):
    long_history(running)
    first = reply(running, "audit CR-1")
    assert "entries 363–402 of 402 (the newest)" in first["text"] and "page 1 of 11" in first["text"]
    shown = flat(first)
    assert positions(first) == list(range(363, 403))
    assert "*stopwork* — on 2026-11-24" in shown and "the latest stop-work" in shown  # the newest is there
    assert "`/contract audit CR-1 page=2`" in shown and "The first entries are on page 11" in shown

    seen = positions(first)
    message = first
    for number in range(2, 12):  # More, page after page, back to the filing
        button = more_of(message)
        assert button is not None and button["value"] == f"1:{number}"
        message = press(running, ActionId.AUDIT_MORE, button["value"])
        assert f"page {number} of 11" in message["text"]
        seen += positions(message)
    assert more_of(message) is None and "begins with the contract's first entry" in flat(message)
    assert "*file*" in flat(message)
    assert sorted(seen) == list(range(1, 403))  # every entry exactly once

    typed = reply(running, "audit CR-1 page=11")
    assert positions(typed) == [1, 2] and "entries 1–2 of 402" in typed["text"]
    assert "page 10 of 11" in reply(running, "audit cr-1 page=010")["text"]


def test_a_page_past_the_last_says_how_many_pages_there_are(running):
    long_history(running)
    settle_outbox(running)
    before = db_counts(running)
    answer = reply(running, "audit CR-1 page=12")["text"]
    assert "Page 12 does not exist: there are 11 pages (402 audit entries of CR-1, 40 a page)." in answer
    assert "Page 999999999 does not exist" in reply(running, "audit CR-1 page=999999999")["text"]
    closed = reply(running, "list closed page=2")["text"]
    assert "Page 2 does not exist: there are no contracts with status closed" in closed
    assert db_counts(running) == before


HOSTILE_PAGES = [
    ("page=0", "must be a page number, a whole number from 1"),
    ("page=-1", "must be a page number"),
    ("page=1.5", "must be a page number"),
    ("page=1e3", "must be a page number"),
    ("page=\u0663", "must be a page number"),  # an Arabic-Indic digit: isdigit(), but not a page number
    ("page=99999999999", "must be a page number"),
    ('page="2 OR 1=1"', "must be a page number"),
    ("page=<@U1>", "must be a page number"),
    ("page=", "needs a page number"),
    ("page=2 page=3", "is given twice"),
    ("pages=2", "Unknown key `pages=`"),
]


def test_hostile_page_values_are_refused_with_the_correct_form_and_change_nothing(running):
    file_quickly(running)
    settle_outbox(running)
    before = db_counts(running)
    for argument, says in HOSTILE_PAGES:
        for command, usage in (
            ("audit CR-1", "/contract audit CR-n [page=N]"),
            ("list", "/contract list [status] [page=N]"),
        ):
            answer = reply(running, f"{command} {argument}")["text"]
            assert says in answer and usage in answer, (argument, answer)
    assert db_counts(running) == before


# ---- list paging -------------------------------------------------------------------------------------------------


def test_list_pages_newest_first_with_counts_and_a_more_button(running):
    many_contracts(running, 45)
    first = reply(running, "list")
    assert first["text"] == "45 contracts, newest first: 1–20 of 45 (page 1 of 3)"
    assert re.findall(r"\*CR-(\d+)\*", flat(first)) == [str(n) for n in range(45, 25, -1)]
    second = press(running, ActionId.LIST_MORE, more_of(first)["value"])
    assert "21–40 of 45 (page 2 of 3)" in second["text"]
    assert re.findall(r"\*CR-(\d+)\*", flat(second)) == [str(n) for n in range(25, 5, -1)]
    third = press(running, ActionId.LIST_MORE, more_of(second)["value"])
    assert "41–45 of 45 (page 3 of 3)" in third["text"] and more_of(third) is None
    assert "This is the last page" in flat(third)

    stopped = reply(running, "list stop-work page=1")
    assert stopped["text"] == "15 contracts with status stop-work, newest first: 1–15 of 15"
    assert more_of(stopped) is None and "page=2" not in flat(stopped)
    assert "Page 2 does not exist: there is only one page" in reply(running, "list stop-work page=2")["text"]
    assert "21–30 of 30 (page 2 of 2)" in reply(running, "list intake page=2")["text"]


# ---- the More button: a value pointing elsewhere or past the end -----------------------------------------------------


ELSEWHERE = [
    (ActionId.AUDIT_MORE, "1:12", "Page 12 does not exist: there are 11 pages"),
    (ActionId.AUDIT_MORE, "999:2", "You may not see CR-999, or it does not exist"),
    (ActionId.AUDIT_MORE, "1:0", "out of date"),
    (ActionId.AUDIT_MORE, "-1:2", "out of date"),
    (ActionId.AUDIT_MORE, "1:2:3", "out of date"),
    (ActionId.AUDIT_MORE, "CR-1:2", "out of date"),
    (ActionId.AUDIT_MORE, "<!channel>", "out of date"),
    (ActionId.AUDIT_MORE, "", "out of date"),
    (ActionId.LIST_MORE, ":9", "Page 9 does not exist: there is only one page (2 contracts)"),
    (ActionId.LIST_MORE, "bogus:2", "out of date"),
    (ActionId.LIST_MORE, "closed:1", "No contracts with status closed yet."),
    (ActionId.LIST_MORE, "x" * 1900, "out of date"),
]


def test_a_more_button_pointing_elsewhere_gets_one_clear_private_reply_and_changes_nothing(running):
    long_history(running)
    file_quickly(running, "Other vendor")  # CR-2
    settle_outbox(running)
    before, calls = db_counts(running), len(running.double.calls())
    for action_id, value, says in ELSEWHERE:
        answer = press(running, action_id, value)
        assert says in answer["text"], (value, answer)
    assert db_counts(running) == before
    sent = [c.method for c in running.double.calls()[calls:]]
    assert sent == ["response_url"] * len(ELSEWHERE)  # one private reply each, and nothing else was sent


def test_a_more_button_for_another_contract_shows_that_contracts_page_as_the_command_would(running):
    file_quickly(running)
    file_quickly(running, "Other vendor")  # CR-2: one entry
    settle_outbox(running)
    before = db_counts(running)
    answer = press(running, ActionId.AUDIT_MORE, "2:1", user=OFFICIAL)
    assert answer["text"] == reply(running, "audit CR-2", user=OFFICIAL)["text"]
    assert answer["text"] == "Audit timeline of CR-2: all 1 entry, oldest first"
    assert db_counts(running) == before


# ---- every reply, message and view within Slack's limits, also for hostile input -------------------------------------

EVIL = "&<>" * 66  # 198 characters that escape to five times as many


def hostile_contract(running, *, post_first: bool = False) -> int:
    """A contract whose every free text is as long as allowed and escapes to five times its length; ``post_first``:
    its parent message is posted before the rest happens (so the rest edits it)."""
    svc = running.bot.service
    done = svc.file_contract(
        MEMBER,
        {
            "vendor": EVIL,
            "product": "<!channel>" * 20,
            "agency": EVIL,
            "component": EVIL,
            "parent": EVIL,
            "contract_no": "&" * 100,
            "term": EVIL,
            "scope": "&" * 2000,
            "purpose": "operational",
        },
    )
    cid = done.contract_id
    assert cid is not None
    if post_first:
        settle_outbox(running)
    many = [f"U{i:08d}" for i in range(60)]
    for user in many:  # only reviewers may be assigned
        svc.grant(ADMIN, user, "reviewer")
    svc.assign(MANAGER, cid, [REVIEWER, *many])
    for qid in ("SCOPE-1", "SCOPE-2", "SCOPE-3", "SCOPE-4", "SCOPE-5"):
        svc.answer(REVIEWER, cid, qid, "yes", note="&" * 2000)
    svc.stopwork(MANAGER, cid, "&" * 2000, None)
    svc.determine(OFFICIAL, cid, "prohibited", "<" * 2000, None)
    return cid


def test_every_reply_stays_within_slacks_limits_for_hostile_input(running):
    cid = hostile_contract(running)
    many_contracts(running, 3)
    with unit_of_work(running.bot.session_factory) as s:  # a crowd of role holders for `admin roles`
        for i in range(250):
            repo.add_role(
                s,
                RoleGrant(
                    user_id=f"W{i:010d}", role="reviewer", granted_by=ADMIN, granted_at=running.clock.now()
                ),
            )
    for command in (f"show CR-{cid}", "list", f"audit CR-{cid}", "help", "admin roles", "admin settings"):
        reply(running, command, user=ADMIN)
    for name in ("file", "list", "audit", "admin", "admin set", "determine"):
        reply(running, f"help {name}")
    shown = flat(reply(running, f"show CR-{cid}"))
    assert "…" in shown  # the long values are visibly shortened, not cut silently
    assert "*Reviewers (61):*" in shown and "and 31 more" in shown
    assert "and 211 more (311 in all)" in flat(reply(running, "admin roles", user=ADMIN))
    # a long confirmation (the reason is quoted back) is spread over sections, not cut
    done = reply(running, f'resume CR-{cid} reason="{"&" * 1990}"', user=MANAGER)
    assert flat({"blocks": done["blocks"]}).count("&amp;") == 1990


def test_every_message_and_view_sent_to_slack_stays_within_its_limits(running):
    hostile_contract(running, post_first=True)  # answers, stop-work, determination: the parent is edited
    sweep(running, MONDAY_9)  # the stop-work reminder and the weekly digest
    open_home(running, MANAGER)
    settle_outbox(running)
    sent = [
        c for c in running.double.calls() if c.method in ("chat.postMessage", "chat.update", "views.publish")
    ]
    assert {c.method for c in sent} == {"chat.postMessage", "chat.update", "views.publish"}
    assert any("Reminder:" in json.dumps(c.params) for c in sent)
    for call in sent:
        params = {
            k: (json.loads(v) if k in ("blocks", "view") and isinstance(v, str) else v)
            for k, v in call.params.items()
        }
        if call.method == "views.publish":
            within_limits({k: params["view"][k] for k in ("type", "blocks")}, "home")
        else:
            within_limits({k: params[k] for k in ("text", "blocks") if k in params})


# ---- App Home lists page too -----------------------------------------------------------------------------------------


def open_home(running, user: str) -> dict:
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
    assert running.double.wait_for(lambda d: d.home_view(user) is not None, timeout=15)
    view = running.double.home_view(user)
    within_limits({k: view[k] for k in ("type", "blocks")}, "home")
    return view


def press_home(running, user: str, value: str, previous: dict) -> dict:
    r = running.slack.block_action(
        user_id=user,
        action_id=ActionId.HOME_MORE,
        value=value,
        block_id="more",
        view={"id": previous.get("id"), "type": "home"},
    )
    assert r.status == 200
    before = json.dumps(previous["blocks"])
    assert running.double.wait_for(
        lambda d: json.dumps((d.home_view(user) or {}).get("blocks")) != before, 15
    )
    view = running.double.home_view(user)
    within_limits({k: view[k] for k in ("type", "blocks")}, "home")
    return view


def home_text(view: dict) -> str:
    return flat({"blocks": view["blocks"]})


def test_app_home_lists_page_with_a_more_button(running):
    many_contracts(running, 75)  # 25 of them under a stop-work order
    first = open_home(running, MANAGER)
    assert "Stop-work orders in effect* (1–10 of 25)" in home_text(first)
    assert "15 after these" in home_text(first)
    more = [e for e in buttons(first) if e["value"].startswith("stopworks:")]
    assert [(e["action_id"], e["value"]) for e in more] == [(ActionId.HOME_MORE, "stopworks:10")]
    before = db_counts(running)
    second = press_home(running, MANAGER, "stopworks:10", first)
    assert "(11–20 of 25)" in home_text(second)
    third = press_home(running, MANAGER, "stopworks:20", second)
    assert "(21–25 of 25)" in home_text(third)
    back = [e for e in buttons(third) if e["value"] == "stopworks:0"]
    assert back and back[0]["text"]["text"] == "Back to the first"
    past = press_home(running, MANAGER, "stopworks:500", third)  # the list got shorter since: from the start
    assert "(1–10 of 25)" in home_text(past) and "shown from the start" in home_text(past)
    bogus = press_home(running, MANAGER, "<!channel>:1", past)
    assert "out of date" in home_text(bogus) and "<!channel>" not in home_text(bogus)
    assert db_counts(running) == before


# ---- links -------------------------------------------------------------------------------------------------------


def test_thread_links_are_slacks_permalinks_as_url_and_label_and_never_a_slack_com_host(running):
    cid = file_quickly(running)
    # before the parent is posted, where it will be (the outbox may already have posted it: then its link)
    waiting = flat(reply(running, f"show CR-{cid}"))
    assert re.search(
        rf"Thread: (in <#{REVIEW}> once its first message is posted|in <#{REVIEW}> \(its|<{GOV})", waiting
    )
    settle_outbox(running)
    with unit_of_work(running.bot.session_factory) as s:
        c = s.get(Contract, cid)
        assert c is not None and c.parent_ts is not None
        known = (
            c.permalink
        )  # filled from chat.getPermalink once the parent was posted (when delivery does that)
        c.permalink = f"{GOV}archives/{REVIEW}/p{c.parent_ts.replace('.', '')}"
        link = c.permalink
        s.add(c)
    assert known in (None, link), known  # Slack's own link, on the workspace's own host
    assert f"Thread: <{link}|open the thread>" in flat(reply(running, f"show CR-{cid}"))

    running.command('stopwork CR-1 reason="check" on=2026-11-20', user=MANAGER)
    sweep(running, MONDAY_9)  # the stop-work reminder links the thread
    settle_outbox(running)
    with unit_of_work(running.bot.session_factory) as s:
        assert s.get(Contract, cid).permalink == link  # type: ignore[union-attr]
    reminders = [m["text"] for m in running.double.messages(MANAGERS) if "Reminder:" in m["text"]]
    assert reminders and any(f"Thread: <{link}|open the thread>" in r for r in reminders), reminders

    shown = reply(running, f"show CR-{cid}")
    everything = [c.params for c in running.double.calls()] + [r["body"] for r in running.double.responses()]
    assert "slack.com" not in json.dumps(everything) + json.dumps(shown)
    assert not re.search(r"(?<![<|])https?://", flat(shown))  # no bare URL: Slack would not link it (F1.29)


def test_a_thread_whose_link_is_not_known_is_named_by_its_channel(running):
    cid = file_quickly(running)
    settle_outbox(running)
    with unit_of_work(running.bot.session_factory) as s:
        c = s.get(Contract, cid)
        assert c is not None
        c.permalink = None
        s.add(c)
    shown = flat(reply(running, f"show CR-{cid}"))
    assert f"Thread: in <#{REVIEW}> (its link is not known yet)" in shown
    assert "https://" not in shown


def test_question_messages_get_new_block_ids_where_an_edit_changed_them(running):
    cid = file_quickly(running)
    settle_outbox(running)
    question = next(
        m
        for m in running.thread(cid)
        if any(str(b.get("block_id", "")).startswith("q:SCOPE-1:") for b in m.get("blocks") or [])
    )
    ids_before = [b["block_id"] for b in question["blocks"]]
    running.bot.service.answer(REVIEWER, cid, "SCOPE-1", "yes")
    settle_outbox(running)
    updated = running.double.message(REVIEW, question["ts"])
    ids_after = [b["block_id"] for b in updated["blocks"]]
    assert ids_before[0] == ids_after[0]  # the question's wording did not change
    assert set(ids_after[1:]) - set(
        ids_before
    )  # the answer and the buttons did: new ids, so clients re-render
