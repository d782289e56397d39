"""`contract-bot console` driven through a pipe: the real app, the real Bolt dispatch, the strict Slack double."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import Settings
from bot.console import USERS, Console, run_console
from bot.console.render import Transcript, activity
from bot.console.repl import REVIEW_CHANNEL
from bot.console.slack import SlackDouble

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
FILE = 'file vendor="Paragon Solutions" product=Graphite agency=ICE awarded=2026-11-02 purpose=operational'


def console(*lines: str, database: str | None = None) -> str:
    """Run the console on these lines (as a pipe would) and return the transcript."""
    out = io.StringIO()
    code = run_console(
        Settings(), database=database, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, start=START
    )
    assert code == 0
    return out.getvalue()


def test_file_shows_the_thread_with_numbered_choices_and_pressing_one_answers():
    out = console(f"/contract {FILE}", "as rae", "1", "/contract show CR-1")
    assert "(only @mel sees this) Filed CR-1: Paragon Solutions / Graphite for ICE" in out
    assert "[#contract-reviews] CR-1: Paragon Solutions / Graphite" in out
    assert "in the thread of CR-1 (#contract-reviews):" in out
    assert "    * SCOPE-1 (§5(b))" in out  # thread replies are indented under the parent
    assert "[1] Yes  [2] No  [3] Unknown  [4] Add note" in out
    assert "(@rae pressed [1] Yes)" in out
    assert "answered Yes" in out and "answered 1 of 20" in out
    assert "`SCOPE-1` yes" in out  # `show` reads it back from the database


def test_a_refused_button_is_answered_privately_and_changes_nothing():
    out = console(f"/contract {FILE}", "press SCOPE-1 No", "/contract show CR-1")
    assert "(only @mel sees this) `answer` needs the reviewer role" in out
    assert "answered 0 of 20" in out


def test_users_roles_and_mentions():
    out = console(
        "users",
        "as manager",
        f"/contract {FILE}",
        "/contract assign CR-1 @rae",
        "as nobody",
        "as ada",
        "/contract admin roles",
    )
    for name, role in (
        ("ada", "admin"),
        ("rae", "reviewer"),
        ("max", "manager"),
        ("olu", "official"),
        ("mel", "member"),
    ):
        assert f"@{name}" in out and role in out
    assert "You are now @max (manager)." in out
    assert "Assigned @rae to CR-1." in out
    assert "No user 'nobody'" in out
    assert "reviewer: @rae" in out and "official: @olu" in out


def test_time_moves_the_clock_and_reminders_fire():
    out = console(
        "as max",
        f"/contract {FILE}",
        '/contract stopwork CR-1 reason="EO 14093 review"',
        "time +1d",
        "time +2h",
        "time 2026-12-01",
        "reminders",
    )
    assert "Time is now Wed 2026-11-25 10:00 EST." in out
    assert "Time is now Wed 2026-11-25 12:00 EST." in out
    assert "Time is now Tue 2026-12-01 10:00 EST." in out
    assert "[#compliance-managers] [STOP] Reminder: the stop-work order on CR-1" in out
    assert "reminder(s) fired" in out
    listed = out.split("max> reminders", 1)[1]
    assert "2026-11-25 10:00 #compliance-managers: [STOP] Reminder: the stop-work order on CR-1" in listed


def test_modal_from_file_without_arguments_can_be_submitted_once():
    out = console(
        "/contract file",
        "submit vendor=Acme product=Spy agency=FBI value=abc",
        "submit vendor=Acme product=Spy agency=FBI value=12",
        "/contract list",
    )
    assert "[modal for @mel: File a contract]" in out and "vendor= Vendor (required)" in out
    assert "[form error] value:" in out
    assert "Filed CR-1: Acme / Spy for FBI." in out
    assert "1 contract" in out


def test_note_button_opens_a_modal_and_the_shortcut_prefills_from_the_message():
    out = console(
        f"/contract {FILE}",
        "as rae",
        "4",
        'submit note="see https://example.org/report"',
        "say vendor=Acme product=Spy agency=FBI — a new award",
        "shortcut",
        "submit",
        "/contract show CR-2",
    )
    assert "[modal for @rae: Note on SCOPE-1]" in out
    assert "[modal for @rae: File a contract]" in out
    assert "[prefilled: Acme]" in out
    assert "Filed CR-2: Acme / Spy for FBI." in out


def test_app_home_shows_the_dashboard():
    out = console(
        "as max", f"/contract {FILE}", '/contract stopwork CR-1 reason="review"', "time +2d", "home"
    )
    home = out.split("max> home", 1)[1]
    assert "[App Home of @max]" in home
    assert "CR-1 Paragon Solutions: since 2026-11-24 (2 days)" in home
    assert "Your roles: manager" in home


def test_bad_lines_do_not_end_the_session():
    out = console(
        "frobnicate",
        "/other",
        "/contract frobnicate",
        "99",
        "submit a=b",
        "time soon",
        "# a comment",
        "help",
        "quit",
        "/contract list",
    )
    assert "Unknown console command 'frobnicate'" in out
    assert "Only /contract is a command of this bot" in out
    assert "subcommand" in out.lower()
    assert "There is no choice [99]" in out
    assert "No form is open for @mel." in out
    assert "time takes +3d" in out
    assert "# a comment" in out
    assert "as <user>" in out  # help
    assert "No contracts" not in out  # nothing after quit ran


def test_a_database_url_keeps_the_record_between_sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    console(f"/contract {FILE}", database=url)
    out = console("/contract list", database=url)
    assert "1 contract" in out and "CR-1" in out


def test_the_command_line_console_works_from_a_pipe_with_no_slack_settings(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
    }
    script = "\n".join([f"/contract {FILE}", "as rae", "press SCOPE-1 Yes", "quit"]) + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # a folder of its own: nothing is written beside the code
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "mel> /contract file" in done.stdout  # the transcript shows what was typed, no prompts
    assert "Filed CR-1" in done.stdout and "(@rae pressed [1] Yes)" in done.stdout
    assert "answered 1 of 20" in done.stdout
    assert "Traceback" not in done.stderr


TWO = (f"/contract {FILE}", '/contract file vendor="NSO Group" product=Pegasus agency=DEA', "as rae")


def test_press_by_text_asks_which_contract_when_several_have_the_button():
    out = console(
        *TWO,
        "press SCOPE-2 Yes",
        "press SCOPE-1 Yes",
        "press CR-2 SCOPE-1 Yes",
        "/contract show CR-1",
        "/contract show CR-2",
    )
    asked = out.split("rae> press SCOPE-1 Yes", 1)[1].split("rae> press CR-2", 1)[0]
    assert "Several contracts have a 'Yes' button on SCOPE-1 (CR-1, CR-2); nothing was pressed." in asked
    assert "Say which: `press CR-2 SCOPE-1 Yes`." in asked
    assert "pressed" in asked and "(@rae pressed" not in asked
    assert "Several contracts have a 'Yes' button on SCOPE-2" in out  # nothing to fall back on either
    show_1 = out.split("rae> /contract show CR-1", 1)[1].split("rae> /contract show CR-2", 1)[0]
    show_2 = out.split("rae> /contract show CR-2", 1)[1]
    assert "answered 0 of 20" in show_1  # the newest contract was not answered by default
    assert "answered 1 of 20" in show_2 and "`SCOPE-1` yes" in show_2


def test_press_by_text_names_the_messages_when_one_contract_has_several():
    out = console(*TWO, "press CR-1 Yes", "press CR-9 SCOPE-1 Yes", "press CR-1 SCOPE-1 Add note")
    several = out.split("rae> press CR-1 Yes", 1)[1].split("rae> press CR-9", 1)[0]
    assert "5 messages of CR-1 have a button 'Yes'; nothing was pressed." in several
    assert "] CR-1 SCOPE-1:" in several and "] CR-1 SCOPE-5:" in several  # each with its number
    assert "No message of CR-9 mentioning 'SCOPE-1' has a button 'Yes'." in out
    assert "[modal for @rae: Note on SCOPE-1]" in out  # a label of two words


def test_a_form_belongs_to_the_person_it_was_opened_for():
    out = console(
        "/contract file",
        "as rae",
        "submit vendor=Acme product=Spy agency=FBI",
        "cancel",
        "as mel",
        "submit vendor=Acme product=Spy agency=FBI",
        "submit",
    )
    assert "No form is open for @rae. (@mel has one open: `as mel` to use it)" in out
    assert "Filed CR-1: Acme / Spy for FBI." in out
    assert out.count("Filed CR-1") == 1 and "No form is open for @mel." in out


def test_the_shortcut_says_whose_message_it_files():
    out = console("say vendor=Acme product=Spy agency=FBI", "as rae", "shortcut")
    assert "(on @mel's message: vendor=Acme product=Spy agency=FBI)" in out
    assert "[modal for @rae: File a contract]" in out


def test_a_button_on_someone_elses_private_reply_is_not_pressed():
    session = Console(Settings(), out=io.StringIO(), start=START)
    try:
        button = {
            "type": "button",
            "action_id": "more",
            "value": "2",
            "text": {"type": "plain_text", "text": "More"},
        }
        choice = session.transcript.choice(button, "b", REVIEW_CHANNEL, None, only_for=USERS[2].id)
        session.run_line(str(choice.number))
        assert f"Choice [{choice.number}] is on a reply only @max sees; `as max` to press it." in (
            session.transcript.out.getvalue()
        )
    finally:
        session.close()


def test_a_payload_slack_would_refuse_is_shown_not_hidden():
    with SlackDouble(limits=False) as double:
        client = WebClient(token="xoxb-test", base_url=double.api_url)
        double.invite("C1")
        with pytest.raises(SlackApiError):
            client.chat_postMessage(
                channel="C1", text="hi", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]
            )
        client.chat_postMessage(channel="C1", text="fine")
        events = activity(
            double.calls(),
            trigger_user=lambda _: None,
            response_url=lambda _: (None, None),
            file_content=bytes,
        )
    out = io.StringIO()
    Transcript(out, names={}, channels={"C1": "general"}, dms={}, message=lambda c, t: None).show_events(
        events, START
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(
        "  (Slack refused the bot's chat.postMessage: invalid_blocks - [ERROR] must be"
    )
    assert lines[1] == "[#general] fine"


def test_the_console_uses_only_bolts_public_api():
    # Bolt's private parts (app._listeners, app._client, the listener runner) change between releases.
    for path in (ROOT / "bot" / "console").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"bolt\.(_\w|listener_runner)", text), path.name


def test_a_channel_the_bot_was_not_invited_to_is_refused_until_invite():
    # The console's Slack is the strict double: the bot is a member only of the channels it was invited to.
    out = console(
        "as ada",
        "/contract admin set review_channel <#CNEW|new>",
        f"/contract {FILE}",
        "invite nowhere",
        "invite CNEW",
        f"/contract {FILE}",
    )
    assert "Nothing was filed: contract-bot cannot post in the review channel #CNEW" in out
    assert "invite takes a channel" in out
    assert "(@contract-bot was added to #CNEW)" in out
    assert "Filed CR-1: Paragon Solutions / Graphite for ICE. The review runs in #CNEW." in out


def test_a_database_that_cannot_be_used_is_named_without_its_password():
    out, err = io.StringIO(), io.StringIO()
    url = "postgresql+psycopg://bot:hunter2@127.0.0.1:1/nowhere?connect_timeout=1"
    with contextlib.redirect_stderr(err):
        code = run_console(Settings(), stdin=io.StringIO("quit\n"), stdout=out, database=url)
    assert code == 2
    assert "hunter2" not in err.getvalue() + out.getvalue()
    assert "--database postgresql+psycopg://bot:***@127.0.0.1:1/nowhere" in err.getvalue()
