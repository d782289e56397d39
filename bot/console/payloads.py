"""The requests Slack would send for what a person does in the console, built and signed as Slack builds them.

Each builder returns ``(body, content type)``; ``signed_request`` turns one into a ``BoltRequest`` carrying the
signature headers Slack adds, so the app's own request verification checks it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.console.slack import APP_ID

FORM = "application/x-www-form-urlencoded"


def signed_request(secret: str, body: str, content_type: str) -> BoltRequest:
    """``body`` as Bolt receives it from Slack: with the timestamp and the signature of ``secret``."""
    ts = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body) or ""
    headers: dict[str, str | Sequence[str]] = {
        "content-type": [content_type],
        "x-slack-request-timestamp": [ts],
        "x-slack-signature": [signature],
    }
    return BoltRequest(body=body, headers=headers)


def to_slack_text(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Typed text as Slack sends a slash command's text: @name and #channel become mentions, & < > are escaped.

    ``users`` maps names to user IDs, ``channels`` names to channel IDs.
    """
    out, pos = [], 0
    for m in re.finditer(r"<[@#!][^<>\s]*>|(?<![\w@])@([a-z][\w.-]*)|(?<![\w#&])#([a-z][\w-]*)", text):
        out.append(_escape(text[pos : m.start()]))
        if m.group(1) and m.group(1).lower() in users:
            out.append(f"<@{users[m.group(1).lower()]}|{m.group(1).lower()}>")
        elif m.group(2) and m.group(2).lower() in channels:
            out.append(f"<#{channels[m.group(2).lower()]}|{m.group(2).lower()}>")
        elif m.group(0).startswith("<"):
            out.append(m.group(0))
        else:
            out.append(_escape(m.group(0)))
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _interactive(payload: dict) -> tuple[str, str]:
    return urlencode({"payload": json.dumps(payload)}), FORM


def user_object(team: str, user_id: str, name: str) -> dict:
    """The ``user`` of an interactive payload."""
    return {"id": user_id, "username": name, "name": name, "team_id": team}


def slash_command(
    *,
    team: str,
    user_id: str,
    user_name: str,
    channel: str,
    channel_name: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> tuple[str, str]:
    """``/contract <text>`` typed by a user in ``channel``."""
    fields = {
        "token": "unused",
        "team_id": team,
        "team_domain": "console",
        "channel_id": channel,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": "/contract",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields), FORM


def block_action(
    *,
    team: str,
    user: dict,
    channel: str | None,
    channel_name: str | None,
    message: Mapping[str, Any],
    action: Mapping[str, str],
    response_url: str,
    trigger_id: str,
) -> tuple[str, str]:
    """A button pressed on ``message``; ``action`` holds its action_id, block_id, value and label."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message.get("ts"),
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    return _interactive(
        {
            "type": "block_actions",
            "user": user,
            "api_app_id": APP_ID,
            "token": "unused",
            "container": container,
            "trigger_id": trigger_id,
            "team": {"id": team, "domain": "console"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": channel_name},
            "message": {k: v for k, v in message.items() if k != "channel"},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "type": "button",
                    "action_id": action["action_id"],
                    "block_id": action["block_id"],
                    "value": action["value"],
                    "text": {"type": "plain_text", "text": action["label"]},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
    )


def message_action(
    *,
    team: str,
    user: dict,
    channel: str,
    channel_name: str,
    callback_id: str,
    message: Mapping[str, Any],
    response_url: str,
    trigger_id: str,
) -> tuple[str, str]:
    """A message shortcut run on ``message``."""
    return _interactive(
        {
            "type": "message_action",
            "token": "unused",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": team, "domain": "console"},
            "user": user,
            "channel": {"id": channel, "name": channel_name},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id,
            "response_url": response_url,
            "message_ts": message.get("ts"),
            "message": {k: v for k, v in message.items() if k != "channel"},
        }
    )


def form_values(view: Mapping[str, Any], pairs: dict[str, str]) -> dict[str, dict]:
    """The ``state.values`` of a form filled with ``pairs`` (by block_id); the pairs it used are removed, and a
    field not given keeps its initial value."""
    values: dict[str, dict] = {}
    for b in view.get("blocks") or []:
        if b.get("type") != "input":
            continue
        element = b.get("element") or {}
        action_id = element.get("action_id") or b.get("block_id")
        raw = pairs.pop(b.get("block_id"), None)
        if raw is None:
            raw = element.get("initial_value")
        if element.get("type") == "static_select":
            option = next((o for o in element.get("options") or [] if o.get("value") == raw), None)
            values[b["block_id"]] = {action_id: {"type": "static_select", "selected_option": option}}
        else:
            values[b["block_id"]] = {
                action_id: {"type": element.get("type") or "plain_text_input", "value": raw}
            }
    return values


def view_submission(
    *, team: str, user: dict, view: Mapping[str, Any], values: dict, trigger_id: str, view_hash: str
) -> tuple[str, str]:
    """A form submitted with ``values``."""
    submitted = {
        **view,
        "state": {"values": values},
        "team_id": team,
        "app_id": APP_ID,
        "root_view_id": view.get("root_view_id") or view.get("id"),
        "hash": view_hash,
    }
    return _interactive(
        {
            "type": "view_submission",
            "team": {"id": team, "domain": "console"},
            "user": user,
            "api_app_id": APP_ID,
            "token": "unused",
            "trigger_id": trigger_id,
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
    )


def app_home_opened(
    *, team: str, bot_user: str, user_id: str, dm_channel: str, event_id: str
) -> tuple[str, str]:
    """The event Slack sends when ``user_id`` opens the app's Home tab."""
    body = {
        "token": "unused",
        "team_id": team,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": dm_channel,
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
        "authorizations": [{"team_id": team, "user_id": bot_user, "is_bot": True}],
    }
    return json.dumps(body), "application/json"
