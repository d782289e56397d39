"""Loud when a channel is wrong: the bot checks it can post in the review and manager channels (at start-up, after
`admin set`, periodically), tells the admins by direct message how to fix it, and `/contract file` (command, bare
command, form, shortcut) refuses with that instruction instead of pretending, until a check sees it fixed.

End to end over HTTP against the strict Slack double, whose channels the bot is in only once invited."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slack_sdk.models.views import View

from bot.app import create_app
from bot.clock import ManualClock
from bot.scheduler import reminders_sweep_job
from handlers.ids import CallbackId
from handlers.modals import build_file_modal
from storage.channels import get_channel
from storage.db import make_engine, read_only
from tests.conftest import (
    ADMIN,
    MANAGERS,
    MEMBER,
    REVIEW,
    SECRET,
    START,
    Running,
    make_settings,
    pg_audit_key_file,
    serve_bot,
)
from tests.support.slack_double import Fault
from tests.support.slack_requests import SlackRequester, healthz

ROOT = Path(__file__).resolve().parents[2]
ADMIN2 = "UADMIN2"  # an admin by role (not in ADMIN_USER_IDS)
# anyway=yes: these tests file the same contract again and again on purpose (not a look-alike warning test)
FILE_ICE = "file vendor=Paragon product=Graphite agency=ICE purpose=operational anyway=yes"
INVITE = "`/invite @contract-bot`"


def dms(running, user: str) -> list[str]:
    """The texts of the direct messages the bot sent ``user``."""
    return [m["text"] for m in running.double.messages(running.double.dm_channel(user))]


def wait_for_dms(running, user: str, count: int, timeout: float = 20.0) -> list[str]:
    """Wait until the outbox (its background loop) has sent ``user`` ``count`` direct messages."""

    def arrived(d) -> bool:  # noqa: ANN001
        return len(dms(running, user)) >= count

    arrived.__name__ = f"{count} DM(s) to {user}"
    running.double.wait_for(arrived, timeout=timeout)
    return dms(running, user)


def wait_for_parent(running, channel: str, ref: str = "CR-1") -> dict:
    """Wait until the parent message of ``ref`` is in ``channel`` (the thread's questions may still be on their way:
    they are paced at Slack's rate per channel, which is not what these tests are about)."""

    def posted(d) -> bool:  # noqa: ANN001
        return any(m["text"].startswith(ref) for m in d.messages(channel))

    posted.__name__ = f"the parent of {ref} in {channel}"
    running.double.wait_for(posted, timeout=20)
    return next(m for m in running.double.messages(channel) if m["text"].startswith(ref))


def recorded(running, channel: str):
    """What the bot recorded about ``channel`` (None before its first check)."""
    with read_only(running.bot.session_factory) as s:
        return get_channel(s, channel)


def form_state(**fields: str) -> dict:
    """What Slack sends when the filing form is submitted with ``fields`` typed in."""
    view = build_file_modal(fields)
    values: dict = {}
    for block in view["blocks"]:
        element = block["element"]
        if element["type"] == "static_select":
            values[block["block_id"]] = {
                element["action_id"]: {
                    "type": "static_select",
                    "selected_option": element.get("initial_option"),
                }
            }
        else:
            values[block["block_id"]] = {
                element["action_id"]: {"type": "plain_text_input", "value": element.get("initial_value")}
            }
    return values


def submit_form(running, **fields: str):
    return running.slack.view_submission(
        user_id=MEMBER, callback_id=CallbackId.FILE_MODAL.value, state_values=form_state(**fields)
    )


def shortcut(running) -> str:
    """Use "File as contract" on a message; returns its response_url."""
    url = running.double.new_response_url(channel=REVIEW, user=MEMBER)
    r = running.slack.message_shortcut(
        user_id=MEMBER,
        callback_id=CallbackId.FILE_SHORTCUT.value,
        message={
            "ts": "1732460000.000100",
            "user": MEMBER,
            "text": "vendor=Paragon product=Graphite agency=ICE",
        },
        channel_id=REVIEW,
        response_url=url,
    )
    assert r.status == 200
    return url


def assert_refused(text: str, channel: str = REVIEW) -> None:
    """A filing refusal that names the channel and the fix."""
    assert "Nothing was filed" in text, text
    assert f"<#{channel}>" in text and INVITE in text, text
    assert "`/contract admin set review_channel #channel`" in text, text
    assert "Filed" not in text and "the review runs in" not in text, text


def test_not_in_the_review_channel_at_start_up_the_admins_are_told_and_filing_refuses_until_invited(running):
    d = running.double
    d.remove(REVIEW)
    d.invite(MANAGERS)
    running.bot.service.grant(ADMIN, ADMIN2, "admin")
    running.bot.check_channels_soon().result(timeout=30)  # what `contract-bot serve` starts at start-up

    told = {ADMIN: 0, ADMIN2: 1}  # ADMIN2 was told of their grant first (every change of role is)
    for admin in (ADMIN, ADMIN2):
        notice = wait_for_dms(running, admin, 1 + told[admin])[-1]
        assert f"cannot post in the review channel <#{REVIEW}>" in notice
        assert "not a member" in notice and INVITE in notice and f"in <#{REVIEW}>" in notice
        assert "`/contract admin set review_channel #channel`" in notice
        assert "`/contract file` refuses new contracts" in notice
    assert MANAGERS not in " ".join(dms(running, ADMIN))  # the manager channel is fine: not mentioned

    # /contract file with arguments: refused with the instruction, nothing filed
    r = running.command(FILE_ICE)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral"
    assert_refused(r.json["text"])
    # the bare command opens no form
    r = running.command("file")
    assert r.status == 200
    assert_refused(r.json["text"])
    assert d.views_opened() == []
    # a form opened before the channel went wrong: the explanation goes on top of it, the form keeps its values
    r = submit_form(running, vendor="Paragon", product="Graphite", agency="ICE", purpose="operational")
    assert r.status == 200 and r.json["response_action"] == "push"
    View(**r.json["view"])  # a view Slack accepts
    assert_refused(str(r.json["view"]))
    # the "File as contract" shortcut opens no form and says why, privately
    url = shortcut(running)
    d.wait_for(lambda dd: len(dd.responses(url)) == 1)
    assert_refused(d.responses(url)[0]["body"]["text"])
    assert d.views_opened() == []
    assert running.bot.service.list_contracts().total == 0
    assert d.messages(REVIEW) == []

    # the periodic check finds the same: no news, no second message
    running.bot.channels.check()
    running.deliver()
    assert len(dms(running, ADMIN)) == 1 and len(dms(running, ADMIN2)) == 2

    # someone types /invite @contract-bot in the channel; the next check sees it and filing works again
    d.invite(REVIEW)
    running.bot.channels.check()
    for admin in (ADMIN, ADMIN2):
        fixed = wait_for_dms(running, admin, 2 + told[admin])[-1]
        assert f"can post in the review channel <#{REVIEW}> again" in fixed and "filed again" in fixed
    r = running.command(FILE_ICE)
    assert "Filed *CR-1*" in r.json["text"] and f"The review runs in <#{REVIEW}>" in r.json["text"]
    wait_for_parent(running, REVIEW)


def test_admin_set_review_channel_to_a_channel_the_bot_is_not_in_tells_the_admins(running):
    d = running.double
    d.invite(REVIEW)
    r = running.command("admin set review_channel <#CNEW1|new-reviews>", user=ADMIN)
    assert r.status == 200
    text = r.json["text"]
    assert "Setting `review_channel` is now `CNEW1`." in text
    assert "contract-bot is now checking that it can post in <#CNEW1>" in text and "direct message" in text
    (notice,) = wait_for_dms(running, ADMIN, 1)
    assert "cannot post in the review channel <#CNEW1>" in notice and INVITE in notice
    assert_refused(running.command(FILE_ICE).json["text"], channel="CNEW1")

    # set again to the same channel (already known to be wrong): the admin who just chose it is told again
    running.command("admin set review_channel <#CNEW1>", user=ADMIN)
    assert "cannot post in the review channel <#CNEW1>" in wait_for_dms(running, ADMIN, 2)[-1]

    # back to a channel the bot is in: filing works, nobody is bothered
    r = running.command(f"admin set review_channel <#{REVIEW}|reviews>", user=ADMIN)
    assert f"checking that it can post in <#{REVIEW}>" in r.json["text"]
    deadline = time.monotonic() + 20
    while (recorded(running, REVIEW) is None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorded(running, REVIEW).is_member is True
    r = running.command(FILE_ICE)
    assert "Filed *CR-1*" in r.json["text"]
    wait_for_parent(running, REVIEW)
    assert len(dms(running, ADMIN)) == 2


def test_admin_set_manager_channel_checks_it_and_filing_is_not_refused_for_it(running):
    d = running.double
    d.invite(REVIEW)
    r = running.command("admin set manager_channel <#CMGR2|managers-2>", user=ADMIN)
    assert "Setting `manager_channel` is now `CMGR2`." in r.json["text"]
    (notice,) = wait_for_dms(running, ADMIN, 1)
    assert "cannot post in the manager channel <#CMGR2>" in notice
    assert "manager reminders and the weekly digest cannot be posted there" in notice
    assert "`/contract admin set manager_channel #channel`" in notice
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]


@pytest.mark.parametrize(
    ("break_it", "words"),
    [
        ("archive", ["the channel is archived", "unarchive"]),
        ("delete_channel", ["`channel_not_found`", INVITE]),
    ],
)
def test_an_archived_or_deleted_review_channel_is_named_with_its_fix(running, break_it, words):
    d = running.double
    d.invite(REVIEW)
    d.invite(MANAGERS)
    getattr(d, break_it)(REVIEW)
    running.bot.channels.check()
    notice = wait_for_dms(running, ADMIN, 1)[0]
    refusal = running.command(FILE_ICE).json["text"]
    for text in (notice, refusal):
        assert f"<#{REVIEW}>" in text and "`/contract admin set review_channel #channel`" in text
        for word in words:
            assert word in text, text
    assert "Nothing was filed" in refusal and running.bot.service.list_contracts().total == 0


def test_a_refused_token_is_named_and_filing_says_so(running):
    d = running.double
    refused = Fault(status=200, body={"ok": False, "error": "invalid_auth"})
    d.script("conversations.info", [refused, refused])
    running.bot.channels.check()
    r = running.command(FILE_ICE)
    assert "Nothing was filed" in r.json["text"] and "`invalid_auth`" in r.json["text"]
    assert "`SLACK_BOT_TOKEN`" in r.json["text"]
    assert running.bot.service.list_contracts().total == 0


def test_no_usable_answer_from_slack_changes_nothing(running, caplog):
    d = running.double
    d.invite(REVIEW)
    d.invite(MANAGERS)
    no_scope = Fault(status=200, body={"ok": False, "error": "missing_scope", "needed": "channels:read"})
    d.script("conversations.info", [no_scope, no_scope])
    with caplog.at_level("WARNING", logger="bot.services.channels"):
        checks = running.bot.channels.check()
    assert [c.is_member for c in checks] == [None, None]
    assert "channels:read" in caplog.text
    down = Fault(status=200, body={"ok": False, "error": "internal_error"})
    d.script("conversations.info", [down, down])
    assert [c.is_member for c in running.bot.channels.check()] == [None, None]
    running.deliver()
    assert dms(running, ADMIN) == []
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]


@pytest.mark.parametrize(
    "value",
    [
        "#general",  # a name, not a channel
        "<#C123",  # unbalanced
        "<@U123>",  # a person
        "C123 C456",  # two
        "<#C123|x> extra",
        "<!channel>",
        "C" + "1" * 300,
    ],
)
def test_malformed_channel_values_are_refused_and_nothing_is_checked(running, value):
    d = running.double
    d.invite(REVIEW)
    r = running.command(f"admin set review_channel {value}", user=ADMIN)
    assert r.status == 200 and "Setting `review_channel` is now" not in r.json["text"]
    assert "checking" not in r.json["text"]
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]  # the review channel did not change
    assert d.calls("conversations.info") == []


def test_admin_set_review_channel_with_a_labelled_mention_keeps_working(running):
    d = running.double
    r = running.command("admin set review_channel <#C123|x>", user=ADMIN)
    assert "Setting `review_channel` is now `C123`." in r.json["text"]
    (notice,) = wait_for_dms(running, ADMIN, 1)
    assert "<#C123>" in notice
    d.invite("C123")
    running.bot.channels.check()
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]
    wait_for_parent(running, "C123")


def test_a_non_admin_setting_a_channel_is_refused_and_nothing_is_checked(running):
    d = running.double
    r = running.command("admin set review_channel <#C999|x>", user=MEMBER)
    assert "Setting" not in r.json["text"] and "admin" in r.json["text"]
    assert "checking" not in r.json["text"]
    time.sleep(0.5)  # a check would have been queued right after the answer
    assert d.calls("conversations.info") == []


def test_the_periodic_check_runs_with_the_reminder_sweep(running):
    running.double.remove(REVIEW)
    assert running.bot.channels.check_if_due() == []  # not yet: serve checked at start-up
    running.bot.channels.period = 0  # the check is due (every 5 minutes in production)
    reminders_sweep_job(running.bot)
    assert "cannot post in the review channel" in wait_for_dms(running, ADMIN, 1)[0]
    assert_refused(running.command(FILE_ICE).json["text"])


def test_a_channel_the_outbox_found_refused_makes_filing_refuse_until_a_check_sees_it_fixed(running):
    d = running.double
    running.bot.channels.check()  # start-up: all is well, nobody is told
    assert recorded(running, REVIEW).is_member is True
    d.remove(REVIEW)  # later someone removes the bot from the channel
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]  # not known yet: it is filed
    deadline = time.monotonic() + 20
    while recorded(running, REVIEW).is_member and time.monotonic() < deadline:  # the outbox learns it
        running.deliver()
        time.sleep(0.05)
    assert recorded(running, REVIEW).problem == "not_in_channel"
    assert_refused(running.command(FILE_ICE).json["text"])  # from then on, filing says so
    assert running.bot.service.list_contracts().total == 1
    running.bot.channels.check()  # the periodic check agrees: not news, the outbox already told the admins
    d.invite(REVIEW)
    running.bot.channels.check()  # fixed: the check writes is_member=True and filing works again
    assert recorded(running, REVIEW).is_member is True
    assert "Filed *CR-2*" in running.command(FILE_ICE).json["text"]
    wait_for_parent(running, REVIEW, "CR-2")


@pytest.fixture
def unconfigured(database, double):
    """The app over HTTP with no review channel set (no REVIEW_CHANNEL, no `admin set review_channel`)."""
    url, schema = database
    clock = ManualClock(START)
    bot = create_app(
        make_settings(double, url, review_channel=None), engine=make_engine(url, schema=schema), clock=clock
    )
    bot.start_background(scheduler=False)
    base, stop = serve_bot(bot)
    try:
        yield Running(bot, SlackRequester(base, SECRET, double=double), double, clock, base)
    finally:
        stop()
        bot.stop()


def test_with_no_review_channel_set_every_way_of_filing_says_so(unconfigured):
    running, d = unconfigured, unconfigured.double
    words = "No review channel is set: an admin must set `REVIEW_CHANNEL` or run `/contract admin set review_channel #channel`"
    assert words in running.command(FILE_ICE).json["text"]
    assert words in running.command("file").json["text"]
    r = submit_form(running, vendor="Paragon", product="Graphite", agency="ICE", purpose="operational")
    assert r.json["response_action"] == "push" and words in str(r.json["view"])
    url = shortcut(running)
    d.wait_for(lambda dd: len(dd.responses(url)) == 1)
    assert words in d.responses(url)[0]["body"]["text"]
    assert d.views_opened() == [] and running.bot.service.list_contracts().total == 0
    running.bot.channels.check()  # only the manager channel is checked: nothing to tell
    assert [c.params["channel"] for c in d.calls("conversations.info")] == [MANAGERS]
    r = running.command(f"admin set review_channel <#{REVIEW}>", user=ADMIN)
    assert "Filed *CR-1*" in running.command(FILE_ICE).json["text"]
    wait_for_parent(running, REVIEW)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_contract_bot_serve_checks_the_channels_at_start_up(database, double, tmp_path):
    """`contract-bot serve` itself (a process of its own): answers at once, and the admins hear of the channel."""
    url, schema = database
    if schema:  # the server takes DATABASE_URL only: its schema goes in the URL
        url = f"{url}?options=-csearch_path%3D{schema}"
    double.remove(REVIEW)  # the bot was never invited to the review channel
    double.invite(MANAGERS)
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": double.api_url,
        "DATABASE_URL": url,
        "REVIEW_CHANNEL": REVIEW,
        "MANAGER_CHANNEL": MANAGERS,
        "ADMIN_USER_IDS": ADMIN,
        "PORT": str(port),
    }
    if schema:  # PostgreSQL requires the audit key (SQLite's is created beside the database file)
        env["AUDIT_KEY_FILE"] = pg_audit_key_file()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        double.wait_for(lambda d: len(d.messages(d.dm_channel(ADMIN))) == 1, timeout=60)
        (notice,) = [m["text"] for m in double.messages(double.dm_channel(ADMIN))]
        assert f"cannot post in the review channel <#{REVIEW}>" in notice and INVITE in notice
        deadline = time.monotonic() + 30
        while True:  # the server listens a moment after the start-up check began (it is not held by it)
            try:
                assert healthz(f"http://127.0.0.1:{port}")[0] == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert "Traceback" not in err, err
    assert f"cannot post in channel {REVIEW} (not_in_channel)" in err
