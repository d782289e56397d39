"""`contract-bot console`: read what a person types, send it to the real bot as Slack would, print what happens.

Every line that reaches the bot is a request signed as Slack signs it, run through the Bolt app's public
``dispatch``; the bot's Web API calls go to the strict Slack double (``bot.console.slack``) and are printed
from its recordings (``bot.console.render``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import secrets
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, TextIO

from sqlalchemy.exc import ArgumentError, OperationalError

from bot.clock import ManualClock
from bot.config import Settings
from bot.console import payloads
from bot.console.render import Choice, Transcript, activity, buttons, plain, short, text_of
from bot.console.slack import BOT_USER_ID, TEAM_ID, SlackDouble
from storage.db import describe_url

log = logging.getLogger("contract_bot.console")

REVIEW_CHANNEL, MANAGER_CHANNEL = "CCONSOLEREVIEW", "CCONSOLEMGRS"
CHANNEL_NAMES = {REVIEW_CHANNEL: "contract-reviews", MANAGER_CHANNEL: "compliance-managers"}
WORKSPACE_URL = "https://console.invalid/"
# How long `home` waits for the dashboard, which the bot publishes after acknowledging the event.
HOME_WAIT_SECONDS = 10.0
_REF_RE = re.compile(r"(?i)^CR-\d+$")


@dataclass(frozen=True)
class ConsoleUser:
    """A seeded person: Slack-style ID, a short name to type, and the role they hold."""

    id: str
    name: str
    role: str


USERS: tuple[ConsoleUser, ...] = (
    ConsoleUser("UCADMIN01", "ada", "admin"),
    ConsoleUser("UCREVIEW01", "rae", "reviewer"),
    ConsoleUser("UCMANAGE01", "max", "manager"),
    ConsoleUser("UCOFFICIAL01", "olu", "official"),
    ConsoleUser("UCOFFICIAL02", "oba", "official"),  # §2(f): another official certifies what olu determined
    ConsoleUser("UCMEMBER01", "mel", "member"),
)

HELP = """Console commands (anything else starting with /contract goes to the bot):
  /contract …           run a bot command as the current user (`/contract help` lists them)
  <n> or press <n>      press button choice n as the current user
  press [CR-n] <text> <label>
                        press the button labelled <label> on the latest message mentioning <text>
                        (e.g. `press SCOPE-1 Yes`); with several contracts open, name the contract
                        (`press CR-2 SCOPE-1 Yes`)
  as <user>             switch user: ada (admin), rae (reviewer), max (manager), olu and oba
                        (officials), mel (member); a role name works too (`as manager`)
  users                 who is who
  time [+3d|+2h|+30m|+1w|YYYY-MM-DD|YYYY-MM-DDTHH:MM]
                        show or move the clock, then run the reminder sweep and send what is due
  home                  open the App Home tab (the dashboard) as the current user
  say <text>            post a message in #contract-reviews as the current user
  shortcut              "File as contract" on the last message posted with `say`
  submit key=value …    submit your open form (field names as shown); `cancel` closes it
  reminders             the reminders the bot has sent in this session
  invite #channel       `/invite @contract-bot` in a channel (#name or its ID, e.g. invite CNEW)
  # …                   a comment (printed in the transcript)
  help, quit
Mentions: type @rae or @max; they are sent as Slack mentions."""


def _pair(token: str) -> tuple[str, str]:
    if "=" not in token:
        raise ValueError(f"{token!r} is not key=value")
    key, value = token.split("=", 1)
    return key.strip().lower(), value


def to_slack_text(text: str, users: dict[str, str]) -> str:
    """Typed text as Slack sends a slash command's text: @name becomes a mention, & < > are escaped."""
    return payloads.to_slack_text(text, users, {v: k for k, v in CHANNEL_NAMES.items()})


def parse_when(arg: str, now: datetime, zone: Any) -> datetime:
    """`+3d`, `+2h`, `+30m`, `+1w`, `YYYY-MM-DD` (10:00 that day) or `YYYY-MM-DDTHH:MM` in the bot's zone."""
    m = re.fullmatch(r"\+(\d+)\s*([wdhm])", arg.lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {
            "w": timedelta(weeks=n),
            "d": timedelta(days=n),
            "h": timedelta(hours=n),
            "m": timedelta(minutes=n),
        }
        return now + delta[unit]
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", arg):
            return datetime.combine(date.fromisoformat(arg), dtime(10, 0), tzinfo=zone).astimezone(UTC)
        when_ = datetime.fromisoformat(arg)
    except ValueError:
        raise ValueError(
            f"time takes +3d, +2h, +30m, +1w, YYYY-MM-DD or YYYY-MM-DDTHH:MM, not {arg!r}"
        ) from None
    return (when_ if when_.tzinfo else when_.replace(tzinfo=zone)).astimezone(UTC)


def _as_posted(msg: dict) -> dict:
    """A message as Slack puts it in a payload (without the double's own bookkeeping)."""
    return {k: v for k, v in msg.items() if k not in ("channel", "edits") and v is not None}


def _mentions(text: str, needle: str) -> bool:
    """Whether ``text`` mentions ``needle`` as a whole word (SCOPE-1 is not in SCOPE-10)."""
    return re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", text, re.IGNORECASE) is not None


class Console:
    """One console session: the real bot, the Slack double, who is typing, and the numbered choices."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: str | None = None,
        out: TextIO | None = None,
        start: datetime | None = None,
        echo: bool = False,
    ) -> None:
        from bot.app import create_app

        self.echo = echo
        self._tmpdir = None if database else tempfile.mkdtemp(prefix="contract-bot-console-")
        url = database or f"sqlite:///{self._tmpdir}/console.db"
        # NOTE: a person typing is far below Slack's rates and the bot does not pace itself here, so the limits
        # are off; every payload is still checked as Slack checks it. A form's trigger does not expire: a slow
        # machine must not lose the form Slack would have opened.
        self.slack = SlackDouble(limits=False, trigger_ttl=None, workspace_url=WORKSPACE_URL).start()
        for channel, name in CHANNEL_NAMES.items():
            self.slack.invite(channel, name=name)
        for u in USERS:
            self.slack.set_user(
                u.id, name=u.name, real_name=u.name, profile={"real_name": u.name, "display_name": u.name}
            )
        self.secret = secrets.token_hex(16)
        self.settings = dataclasses.replace(
            settings,
            slack_bot_token="xoxb-console-not-a-real-token",
            slack_signing_secret=self.secret,
            slack_app_token=None,
            slack_api_url=self.slack.api_url,
            database_url=url,
            review_channel=REVIEW_CHANNEL,
            manager_channel=MANAGER_CHANNEL,
            admin_user_ids=(USERS[0].id,),
        )
        self.clock = ManualClock(start or datetime.now(UTC))
        try:
            # One listener thread and one worker, so that the transcript is in order; no pacing of the outbox
            # (its Slack has no rate limits).
            self.bot = create_app(
                self.settings,
                clock=self.clock,
                listener_threads=1,
                followup_threads=1,
                slack_rate_scale=math.inf,
            )
        except Exception:
            self.slack.stop()
            if self._tmpdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise
        self.transcript = Transcript(
            out or sys.stdout,
            names={u.id: u.name for u in USERS},
            channels=dict(CHANNEL_NAMES),
            dms={self.slack.dm_channel(u.id): u.id for u in USERS},
            message=self.slack.message,
        )
        self.user = next(u for u in USERS if u.role == "member")
        self.said: tuple[str, str, str] | None = None  # (channel, ts, author) of the last `say`
        self._triggers: dict[str, str] = {}  # trigger_id -> user
        self._response_urls: dict[str, tuple[str, str | None]] = {}  # path -> (user, channel)
        self._shown = 0  # the double's calls already printed
        self._event_ids = 0
        for u in USERS:
            if u.role not in ("admin", "member"):
                self.bot.service.grant(USERS[0].id, u.id, u.role)
        self.settle(quiet=True)

    def close(self) -> None:
        """Stop everything the session started and remove its temporary database."""
        self.bot.stop()
        self.slack.stop()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # -- output
    @property
    def reminders(self) -> list[tuple[datetime, str, str]]:
        """The reminders the bot sent in this session: (when, where, first line)."""
        return self.transcript.reminders

    def say(self, text: str = "") -> None:
        """Print a line of transcript."""
        self.transcript.say(text)

    def who(self, user_id: str | None) -> str:
        """@name for a user ID."""
        return self.transcript.who(user_id)

    # -- sending requests through the real Bolt app
    def dispatch(self, request: tuple[str, str]) -> tuple[int, str]:
        """Sign a (body, content type) as Slack does and run it through the Bolt app; returns (status, body)."""
        body, content_type = request
        response = self.bot.bolt.dispatch(payloads.signed_request(self.secret, body, content_type))
        return response.status, response.body or ""

    def _trigger(self) -> str:
        trigger = self.slack.new_trigger_id()
        self._triggers[trigger] = self.user.id
        return trigger

    def _response_url(self, channel: str | None, message_ts: str | None = None) -> str:
        url = self.slack.new_response_url(channel=channel, message_ts=message_ts, user=self.user.id)
        self._response_urls[url[len(self.slack.base_url) :]] = (self.user.id, channel)
        return url

    def _user_obj(self) -> dict:
        return payloads.user_object(TEAM_ID, self.user.id, self.user.name)

    def settle(self, quiet: bool = False) -> None:
        """Wait for the bot's follow-up work, send what its outbox holds, and print what reached Slack."""
        for _ in range(3):
            # one follow-up worker: a no-op submitted after the work queued so far runs after it
            self.bot.followups.submit(lambda: None).result()
            self.bot.dispatcher.deliver_due()
        calls = self.slack.calls()
        new, self._shown = calls[self._shown :], len(calls)
        if quiet:
            return
        events = activity(
            new,
            trigger_user=self._triggers.get,
            response_url=lambda path: self._response_urls.get(path, (None, None)),
            file_content=self._file_content,
        )
        self.transcript.show_events(events, self.clock.now())

    def _file_content(self, file_id: str) -> bytes:
        found = next((f for f in self.slack.files() if f["id"] == file_id), None)
        return found["content"] if found else b""

    def _unanswered(self, status: int) -> bool:
        if status != 200:
            self.say(f"  (the bot answered HTTP {status})")
            return True
        return False

    # -- what a person does
    def command(self, text: str) -> None:
        """`/contract …` as the current user."""
        request = payloads.slash_command(
            team=TEAM_ID,
            user_id=self.user.id,
            user_name=self.user.name,
            channel=REVIEW_CHANNEL,
            channel_name=CHANNEL_NAMES[REVIEW_CHANNEL],
            text=to_slack_text(text, {u.name: u.id for u in USERS}),
            response_url=self._response_url(REVIEW_CHANNEL),
            trigger_id=self._trigger(),
        )
        status, body = self.dispatch(request)
        self._show_ack(status, body)
        self.settle()

    def _show_ack(self, status: int, body: str) -> None:
        if self._unanswered(status) or not body.strip():
            return
        try:
            reply = json.loads(body)
        except ValueError:
            self.transcript.private(plain(body).split("\n"), self.user.id)
            return
        if "response_action" in reply:
            self._show_view_ack(reply)
            return
        lines = self.transcript.render_blocks(
            reply.get("blocks") or [], reply.get("text") or "", REVIEW_CHANNEL, only_for=self.user.id
        )
        self.transcript.private(lines, self.user.id)

    def _show_view_ack(self, reply: dict) -> None:
        action = reply.get("response_action")
        if action == "errors":
            for key, message in (reply.get("errors") or {}).items():
                self.say(f"  [form error] {key}: {plain(message)}")
            self.say("  The form is still open: `submit` again with the fixes, or `cancel`.")
            return
        self.transcript.modals.pop(self.user.id, None)
        if action in ("update", "push"):
            self.transcript.show_view(reply.get("view") or {})

    def press(self, number: int) -> None:
        """Press a numbered choice as the current user (a real block_actions payload)."""
        choice = self.transcript.choices.get(number)
        if choice is None:
            self.say(f"  There is no choice [{number}]. Choices are the numbers shown next to buttons.")
            return
        if choice.only_for and choice.only_for != self.user.id:
            # Slack shows a private reply's buttons to that one person only.
            owner = self.who(choice.only_for)
            self.say(f"  Choice [{number}] is on a reply only {owner} sees; `as {owner[1:]}` to press it.")
            return
        message: dict = {}
        if choice.channel and choice.ts:
            found = self.slack.message(choice.channel, choice.ts)
            if found is None:
                self.say(f"  Choice [{number}] was on a message that has been deleted.")
                return
            if not any(
                e.get("action_id") == choice.action_id and (e.get("value") or "") == choice.value
                for e, _ in buttons(found)
            ):
                self.say(f"  Choice [{number}] is no longer on its message (the bot edited it).")
                return
            message = _as_posted(found)
        self._press(choice, message)

    def _press(self, choice: Choice, message: dict) -> None:
        request = payloads.block_action(
            team=TEAM_ID,
            user=self._user_obj(),
            channel=choice.channel,
            channel_name=CHANNEL_NAMES.get(choice.channel or "", choice.channel),
            message=message,
            action={
                "action_id": choice.action_id,
                "block_id": choice.block_id,
                "value": choice.value,
                "label": choice.label,
            },
            response_url=self._response_url(choice.channel, choice.ts),
            trigger_id=self._trigger(),
        )
        self.say(f"  ({self.who(self.user.id)} pressed [{choice.number}] {choice.label})")
        status, _ = self.dispatch(request)
        self._unanswered(status)
        self.settle()

    def _contract_of(self, msg: dict) -> str | None:
        """The contract a message belongs to: its thread's parent names it, or the message itself does."""
        parent = msg
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            parent = self.slack.message(msg["channel"], msg["thread_ts"]) or msg
        found = re.search(r"\bCR-\d+\b", parent.get("text") or "")
        return found.group(0) if found else None

    def _matches(self, ref: str | None, needle: str, label: str) -> list[tuple[dict, dict, str]]:
        """(message, button, block_id) of every message (newest first) of contract ``ref`` (any when None)
        that mentions ``needle`` and has a button labelled ``label``."""
        found = []
        for msg in reversed(self.slack.messages()):
            if needle and not _mentions(msg.get("text") or "", needle):
                continue
            if ref and self._contract_of(msg) != ref:
                continue
            for element, block_id in buttons(msg):
                if plain(text_of(element.get("text"))).lower() == label.lower():
                    found.append((msg, element, block_id))
        return found

    def press_matching(self, words: list[str]) -> None:
        """`press [CR-n] <text> <label>`: the button ``label`` on the newest message that mentions ``text``.

        With several contracts that have such a button, it presses nothing and asks which contract: the newest
        one is not necessarily the one meant.
        """
        ref = words[0].upper() if len(words) >= 2 and _REF_RE.match(words[0]) else None
        rest = words[1:] if ref else words
        # The label may be several words ("Add note"): the longest label that some button carries wins.
        splits = [
            (" ".join(rest[:k]), " ".join(rest[k:])) for k in range(1 if len(rest) > 1 else 0, len(rest))
        ]
        needle, label, found = "", rest[-1], []
        for needle, label in splits:
            found = self._matches(ref, needle, label)
            if found:
                break
        where = f" of {ref}" if ref else ""
        if not found:
            mentioning = f" mentioning {needle!r}" if needle else ""
            self.say(f"  No message{where}{mentioning} has a button {label!r}.")
            return
        contracts = list(dict.fromkeys(self._contract_of(msg) or "(no contract)" for msg, _, _ in found))
        if len(contracts) > 1:
            # The newest is not necessarily the one meant: an answer on the wrong contract is a wrong record.
            contracts.sort(key=lambda c: int(c[3:]) if c[3:].isdigit() else 0)
            self.say(
                f"  Several contracts have a {label!r} button{' on ' + needle if needle else ''} "
                f"({', '.join(contracts)}); nothing was pressed. Say which: `press {contracts[-1]} {' '.join(rest)}`."
            )
            return
        messages = list(dict.fromkeys((msg["channel"], msg["ts"]) for msg, _, _ in found))
        if len(messages) > 1:
            listed = "; ".join(
                f"[{self.transcript.choice(e, b, m['channel'], m['ts']).number}] "
                f"{short(plain(m.get('text') or '', self.transcript.names).splitlines()[0], 40)}"
                for m, e, b in found[:6]
            )
            mentioning = f" mentioning {needle!r}" if needle else ""
            self.say(
                f"  {len(messages)} messages{where}{mentioning} have a button {label!r}; nothing was pressed. "
                f"Name one more precisely (a question ID), or press its number: {listed}"
            )
            return
        msg, element, block_id = found[0]
        self._press(self.transcript.choice(element, block_id, msg["channel"], msg["ts"]), _as_posted(msg))

    def open_home(self) -> None:
        """The app_home_opened event, as Slack sends it when the user opens the Home tab."""
        self._event_ids += 1

        def published(d: SlackDouble) -> int:
            return sum(1 for c in d.calls("views.publish") if c.params.get("user_id") == self.user.id)

        before = published(self.slack)
        request = payloads.app_home_opened(
            team=TEAM_ID,
            bot_user=BOT_USER_ID,
            user_id=self.user.id,
            dm_channel=self.slack.dm_channel(self.user.id),
            event_id=f"EvCONSOLE{self._event_ids}{secrets.token_hex(3)}",
        )
        status, _ = self.dispatch(request)
        if self._unanswered(status):
            return
        # The bot publishes the dashboard after acknowledging the event: wait for it to reach Slack.
        try:
            self.slack.wait_for(lambda d: published(d) > before, timeout=HOME_WAIT_SECONDS)
        except AssertionError:
            self.say(f"  (the Home tab was not published within {HOME_WAIT_SECONDS:.0f} s)")
        self.settle()

    def post_message(self, text: str) -> None:
        """A person's message in the review channel (something to run the shortcut on)."""
        msg = self.slack.add_user_message(REVIEW_CHANNEL, self.user.id, text)
        self.said = (REVIEW_CHANNEL, msg["ts"], self.user.id)
        self._shown = len(self.slack.calls())
        self.say(f"[#{CHANNEL_NAMES[REVIEW_CHANNEL]}] {self.who(self.user.id)}: {text}")

    def shortcut(self) -> None:
        """The "File as contract" message shortcut on the last message posted with `say`."""
        from handlers.ids import CallbackId

        found = self.slack.message(self.said[0], self.said[1]) if self.said else None
        if self.said is None or found is None:
            self.say("  Post a message first with `say <text>`; the shortcut runs on it.")
            return
        if self.said[2] != self.user.id:
            # The shortcut works on anyone's message; say whose, so nobody files someone else's by surprise.
            self.say(f"  (on {self.who(self.said[2])}'s message: {short(found.get('text') or '', 60)})")
        request = payloads.message_action(
            team=TEAM_ID,
            user=self._user_obj(),
            channel=REVIEW_CHANNEL,
            channel_name=CHANNEL_NAMES[REVIEW_CHANNEL],
            callback_id=CallbackId.FILE_SHORTCUT.value,
            message=_as_posted(found),
            response_url=self._response_url(REVIEW_CHANNEL),
            trigger_id=self._trigger(),
        )
        status, _ = self.dispatch(request)
        self._unanswered(status)
        self.settle()

    def _open_form(self) -> dict | None:
        """The form open for the current user, or None after saying so."""
        modal = self.transcript.modals.get(self.user.id)
        if modal is None:
            others = [self.who(uid) for uid in self.transcript.modals]
            hint = f" ({', '.join(others)} has one open: `as {others[0][1:]}` to use it)" if others else ""
            self.say(f"  No form is open for {self.who(self.user.id)}.{hint}")
        return modal

    def submit(self, args: str) -> None:
        """Submit the current user's open form with key=value pairs (a real view_submission payload)."""
        modal = self._open_form()
        if modal is None:
            return
        try:
            pairs = dict(_pair(tok) for tok in shlex.split(args))
        except ValueError as exc:
            self.say(f'  {exc}. Write submit key=value key2="two words" …')
            return
        values = payloads.form_values(modal, pairs)
        if pairs:
            self.say(f"  This form has no field {', '.join(sorted(pairs))}; it is ignored.")
        request = payloads.view_submission(
            team=TEAM_ID,
            user=self._user_obj(),
            view=modal,
            values=values,
            trigger_id=self._trigger(),
            view_hash=str(modal.get("hash") or secrets.token_hex(4)),
        )
        status, body = self.dispatch(request)
        if self._unanswered(status):
            pass
        elif body.strip():
            self._show_ack(status, body)
        else:
            self.transcript.modals.pop(self.user.id, None)
            self.say("  (form closed)")
        self.settle()

    def cancel(self) -> None:
        """Close the current user's open form."""
        if self._open_form() is not None:
            self.transcript.modals.pop(self.user.id, None)
            self.say("  (form closed)")

    def move_time(self, arg: str) -> None:
        """Move the clock, then run the reminder sweep and the outbox so due reminders go out."""
        zone = self.bot.calendar.zone
        before = self.clock.now()
        arg = arg.strip()
        if arg:
            try:
                target = parse_when(arg, before, zone)
            except ValueError as exc:
                self.say(f"  {exc}")
                return
            self.clock.set(target)
        now = self.clock.now()
        note = "" if now >= before else " (moved backwards: reminders already sent stay sent)"
        self.say(f"  Time is now {now.astimezone(zone):%a %Y-%m-%d %H:%M %Z}{note}.")
        if not arg:
            return
        result = self.bot.sweeper.sweep()
        self.settle()
        if result.sent or result.skipped:
            self.say(f"  ({result.sent} reminder(s) fired; {result.skipped} no longer applied)")

    def list_reminders(self) -> None:
        """The reminders the bot sent in this session."""
        if not self.reminders:
            self.say("  No reminders have fired yet.")
            return
        zone = self.bot.calendar.zone
        for when_, where, first in self.reminders:
            self.say(f"  {when_.astimezone(zone):%Y-%m-%d %H:%M} {where}: {short(first, 150)}")

    def switch_user(self, name: str) -> None:
        """`as <user>`: by name, role or ID."""
        key = name.strip().lstrip("@").lower()
        user = next((u for u in USERS if key in (u.name, u.role, u.id.lower())), None)
        if user is None:
            self.say(f"  No user {name!r}. Users: " + ", ".join(f"{u.name} ({u.role})" for u in USERS))
            return
        self.user = user
        self.say(f"  You are now @{user.name} ({user.role}).")

    def list_users(self) -> None:
        """Who is who."""
        for u in USERS:
            mark = " <- you" if u is self.user else ""
            self.say(f"  @{u.name:<4} {u.role:<9} {u.id}{mark}")

    def invite(self, arg: str) -> None:
        """`/invite @contract-bot` in a channel: the bot may post there from now on, and checks it at once."""
        typed = arg.strip()
        mention = re.fullmatch(r"<#(\w+)(?:\|[^>]*)?>", typed)
        name = typed.lstrip("#").lower()
        channel = (
            mention.group(1)
            if mention
            else {v: k for k, v in CHANNEL_NAMES.items()}.get(name, typed.lstrip("#"))
        )
        if not re.fullmatch(r"[CG][A-Z0-9]+", channel):
            self.say(
                f"  invite takes a channel: #{CHANNEL_NAMES[REVIEW_CHANNEL]} or a channel ID such as CNEW."
            )
            return
        self.slack.invite(channel, name=CHANNEL_NAMES.get(channel))
        self.say(f"  (@contract-bot was added to {self.transcript.where(channel)})")
        self.bot.check_channels_soon().result()
        self.settle()

    def _press_line(self, rest: str) -> None:
        parts = rest.split()
        if len(parts) == 1 and parts[0].isdigit():
            self.press(int(parts[0]))
        elif len(parts) >= 2:
            self.press_matching(parts)
        else:
            self.say("  press <n>, or press [CR-n] <text> <button label>")

    # -- one line
    def run_line(self, line: str) -> bool:
        """Run one typed line; False when the session should end."""
        line = line.strip()
        if not line:
            return True
        self.transcript.break_thread()
        if self.echo:
            self.say(f"{self.user.name}> {line}" if not line.startswith("#") else line)
        if line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        word = word.lower()
        words: dict[str, Callable[[], Any]] = {
            "/contract": lambda: self.command(rest),
            "press": lambda: self._press_line(rest),
            "as": lambda: self.switch_user(rest),
            "users": self.list_users,
            "who": self.list_users,
            "time": lambda: self.move_time(rest),
            "home": self.open_home,
            "say": lambda: self.post_message(rest),
            "shortcut": self.shortcut,
            "submit": lambda: self.submit(rest),
            "cancel": self.cancel,
            "reminders": self.list_reminders,
            "invite": lambda: self.invite(rest),
            "help": lambda: self.say(HELP),
            "?": lambda: self.say(HELP),
        }
        try:
            if word in ("quit", "exit"):
                return False
            if word in words:
                words[word]()
            elif word.startswith("/"):
                self.say(f"  Only /contract is a command of this bot (got {word}).")
            elif word.isdigit():
                self.press(int(word))
            else:
                self.say(
                    f"  Unknown console command {word!r}. Type `help`; bot commands start with /contract."
                )
        except Exception:  # noqa: BLE001 - one bad line must not end the session
            log.exception("console line failed: %s", line)
            self.say("  (the console could not run that line; see the log above)")
        return True


# ---- the entry point -------------------------------------------------------------------------------------


def quiet_logs() -> None:
    """The transcript is the output: only warnings and errors go to stderr."""
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("slack_bolt", "slack_sdk", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # NOTE: create_app hands Bolt a client and a token; Bolt's warning about it says nothing to a console user.
    bolt_app = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _DropTokenWarning) for f in bolt_app.filters):
        bolt_app.addFilter(_DropTokenWarning())


class _DropTokenWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


def run_console(
    settings: Settings | None = None,
    database: str | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    start: datetime | None = None,
) -> int:
    """`contract-bot console`: read lines (a terminal or a pipe), print the transcript; returns the exit code."""
    settings = settings or Settings()
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin is sys.stdin and stdin.isatty() and stdout.isatty()
    quiet_logs()
    try:
        console = Console(settings, database=database, out=stdout, start=start, echo=not interactive)
    except (ArgumentError, OperationalError) as exc:
        shown = describe_url(database) if database else "(none)"  # never the password
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"contract-bot: --database {shown} cannot be used: {reason}", file=sys.stderr)
        return 2
    try:
        if interactive:
            try:
                import readline  # noqa: F401 - line editing and history for input()
            except ImportError:
                pass
            zone = console.bot.calendar.zone
            console.say(
                "contract-bot console: the whole bot, no Slack workspace. Type `help`, or try\n"
                '  /contract file vendor="Paragon Solutions" product=Graphite agency=ICE\n'
                f"It is {console.clock.now().astimezone(zone):%a %Y-%m-%d %H:%M %Z}; "
                f"you are @{console.user.name} ({console.user.role})."
            )
            while True:
                try:
                    line = input(f"{console.user.name}> ")
                except EOFError:
                    console.say()
                    break
                except KeyboardInterrupt:
                    console.say()
                    continue
                if not console.run_line(line):
                    break
        else:
            for line in stdin:
                if not console.run_line(line):
                    break
        stdout.flush()
    finally:
        console.close()
    return 0
