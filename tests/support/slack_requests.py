"""HTTP requests to the bot signed exactly as Slack signs them (real HTTP via urllib).

    req = SlackRequester("http://127.0.0.1:8080", "secret", double=double)
    r = req.command("status 42", user_id="U1")
    assert r.status == 200

Every request method accepts these keyword overrides:

* ``timestamp=`` - value of ``X-Slack-Request-Timestamp`` (int/float/str; the signature is made
  with it), e.g. ``time.time() - 600``;
* ``signature=`` - send this ``X-Slack-Signature`` instead of the right one;
* ``unsigned=True`` - send no signature headers at all;
* ``headers=`` - extra headers, e.g. ``{"X-Slack-Retry-Num": "1"}``;
* ``tamper=`` - ``callable(bytes) -> bytes`` applied to the body *after* signing;
* ``path=`` - post somewhere else than ``/slack/events``.

Response headers in :class:`SlackResponse` are keyed in lower case.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

__all__ = ["SlackRequester", "SlackResponse", "healthz", "sign"]

_counter = itertools.count(1)


@dataclass
class SlackResponse:
    status: int
    headers: dict
    body: str
    json: dict | None


def sign(signing_secret: str, timestamp: str | int, body: bytes | str) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = f"v0:{timestamp}:".encode() + raw
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def _http(url: str, *, data: bytes | None, headers: dict, method: str, timeout: float) -> SlackResponse:
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    body = raw.decode("utf-8", "replace")
    parsed = None
    if body[:1] in ("{", "["):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return SlackResponse(status, {k.lower(): v for k, v in hdrs.items()}, body, parsed)


def healthz(base_url: str, timeout: float = 5.0) -> tuple[int, str]:
    """``GET {base_url}/healthz`` -> (status, body)."""
    r = _http(base_url.rstrip("/") + "/healthz", data=None, headers={}, method="GET", timeout=timeout)
    return r.status, r.body


class SlackRequester:
    def __init__(
        self,
        base_url: str,
        signing_secret: str,
        *,
        team_id: str = "T1",
        now: Callable[[], float] = time.time,
        double: Any = None,
        api_app_id: str = "A1",
        team_domain: str = "t1",
        path: str = "/slack/events",
        timeout: float = 10.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.now = now
        self.double = double
        self.api_app_id = api_app_id
        self.team_domain = team_domain
        self.path = path
        self.timeout = timeout

    # ------------------------------------------------------------------ plumbing
    def sign(self, body: bytes | str, timestamp: str | int) -> str:
        return sign(self.signing_secret, timestamp, body)

    def signed_headers(self, body: bytes, *, timestamp: Any = None, signature: str | None = None) -> dict:
        ts = (
            str(int(self.now()))
            if timestamp is None
            else (timestamp if isinstance(timestamp, str) else str(int(timestamp)))
        )
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature if signature is not None else self.sign(body, ts),
        }

    def raw(
        self,
        body: bytes | str,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        timestamp: Any = None,
        signature: str | None = None,
        unsigned: bool = False,
        headers: dict | None = None,
        tamper: Callable[[bytes], bytes] | None = None,
        path: str | None = None,
    ) -> SlackResponse:
        """POST an arbitrary body, signed unless ``unsigned``."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        hdrs = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if not unsigned:
            hdrs.update(self.signed_headers(data, timestamp=timestamp, signature=signature))
        if headers:
            hdrs.update(headers)
        if tamper is not None:
            data = tamper(data)
        return _http(
            self.base_url + (path or self.path), data=data, headers=hdrs, method="POST", timeout=self.timeout
        )

    def _form(self, fields: dict, **overrides: Any) -> SlackResponse:
        return self.raw(urlencode(fields), "application/x-www-form-urlencoded", **overrides)

    def _interactive(self, payload: dict, **overrides: Any) -> SlackResponse:
        return self._form({"payload": json.dumps(payload, separators=(",", ":"))}, **overrides)

    def _response_url(
        self, channel: str | None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        if self.double is not None:
            return self.double.new_response_url(channel=channel, message_ts=message_ts, user=user)
        n = next(_counter)
        return f"https://hooks.slack.com/actions/{self.team_id}/{n}/{uuid.uuid4().hex[:24]}"

    def _trigger_id(self) -> str:
        if self.double is not None:
            return self.double.new_trigger_id()
        return f"{next(_counter)}.{int(self.now())}.{uuid.uuid4().hex[:32]}"

    def _user(self, user_id: str, user_name: str | None = None) -> dict:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team(self) -> dict:
        return {"id": self.team_id, "domain": self.team_domain}

    def _action_ts(self) -> str:
        return f"{self.now():.6f}"

    @staticmethod
    def _channel_name(channel_id: str) -> str:
        return "directmessage" if channel_id.startswith("D") else channel_id.lower()

    # ------------------------------------------------------------------ payloads
    def command(
        self,
        text: str,
        *,
        user_id: str,
        command: str = "/contract",
        channel_id: str = "CREVIEW",
        response_url: str | None = None,
        trigger_id: str | None = None,
        user_name: str | None = None,
        channel_name: str | None = None,
        **overrides: Any,
    ) -> SlackResponse:
        """A slash command, form-encoded like Slack's."""
        fields = {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name or self._channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url or self._response_url(channel_id, user=user_id),
            "trigger_id": trigger_id or self._trigger_id(),
        }
        return self._form(fields, **overrides)

    def block_action(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str,
        block_id: str = "b",
        message: dict | None = None,
        channel_id: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
        container: dict | None = None,
        view: dict | None = None,
        actions: list[dict] | None = None,
        state_values: dict | None = None,
        **overrides: Any,
    ) -> SlackResponse:
        """A ``block_actions`` payload (a button click by default). ``message`` holds
        ``ts``/``channel``/``thread_ts``/``text``/``blocks`` of the message clicked."""
        channel = channel_id or (message or {}).get("channel")
        msg_ts = (message or {}).get("ts")
        if container is None:
            if view is not None:
                container = {"type": "view", "view_id": view.get("id")}
            elif message is not None:
                container = {
                    "type": "message",
                    "message_ts": msg_ts,
                    "channel_id": channel,
                    "is_ephemeral": False,
                }
                if message.get("thread_ts"):
                    container["thread_ts"] = message["thread_ts"]
            else:
                container = {"type": "message", "channel_id": channel, "is_ephemeral": False}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token-unused",
            "container": container,
            "trigger_id": trigger_id or self._trigger_id(),
            "team": self._team(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": state_values or {}},
            "actions": actions
            or [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "text": {"type": "plain_text", "text": value, "emoji": True},
                    "action_ts": self._action_ts(),
                }
            ],
        }
        if channel:
            payload["channel"] = {"id": channel, "name": self._channel_name(channel)}
        if message is not None:
            msg = {"type": "message", "user": "UBOT", "bot_id": "B1", "text": "", **message}
            msg.pop("channel", None)
            payload["message"] = msg
        if view is not None:
            payload["view"] = view
        else:
            payload["response_url"] = response_url or self._response_url(channel, msg_ts, user_id)
        return self._interactive(payload, **overrides)

    def view_submission(
        self,
        *,
        user_id: str,
        callback_id: str,
        state_values: dict,
        private_metadata: str = "",
        view_id: str | None = None,
        view_hash: str | None = None,
        blocks: list | None = None,
        trigger_id: str | None = None,
        **overrides: Any,
    ) -> SlackResponse:
        """A ``view_submission`` payload for a modal."""
        vid = view_id or f"V{uuid.uuid4().hex[:10].upper()}"
        payload = {
            "type": "view_submission",
            "team": self._team(),
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "verification-token-unused",
            "trigger_id": trigger_id or self._trigger_id(),
            "view": {
                "id": vid,
                "team_id": self.team_id,
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": state_values},
                "hash": view_hash or f"{int(self.now())}.{uuid.uuid4().hex[:8]}",
                "title": {"type": "plain_text", "text": "Modal"},
                "blocks": blocks or [],
                "root_view_id": vid,
                "previous_view_id": None,
                "app_id": self.api_app_id,
                "external_id": "",
                "bot_id": "B1",
            },
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._interactive(payload, **overrides)

    def message_shortcut(
        self,
        *,
        user_id: str,
        callback_id: str,
        message: dict,
        channel_id: str,
        trigger_id: str | None = None,
        response_url: str | None = None,
        **overrides: Any,
    ) -> SlackResponse:
        """A message shortcut (``type: message_action``)."""
        payload = {
            "type": "message_action",
            "token": "verification-token-unused",
            "action_ts": self._action_ts(),
            "team": self._team(),
            "user": self._user(user_id),
            "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": trigger_id or self._trigger_id(),
            "response_url": response_url or self._response_url(channel_id, message.get("ts"), user_id),
            "message_ts": message.get("ts"),
            "message": {"type": "message", **{k: v for k, v in message.items() if k != "channel"}},
        }
        return self._interactive(payload, **overrides)

    def event(
        self,
        event: dict,
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **overrides: Any,
    ) -> SlackResponse:
        """An Events API ``event_callback``; ``retry_num``/``retry_reason`` add Slack's retry headers."""
        body = {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(self.now()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": "UBOT",
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        extra = dict(overrides.pop("headers", None) or {})
        if retry_num is not None:
            extra["X-Slack-Retry-Num"] = str(retry_num)
            extra["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        elif retry_reason is not None:
            extra["X-Slack-Retry-Reason"] = retry_reason
        return self.raw(json.dumps(body), "application/json", headers=extra, **overrides)

    def url_verification(self, challenge: str = "challenge-token", **overrides: Any) -> SlackResponse:
        body = {"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"}
        return self.raw(json.dumps(body), "application/json", **overrides)
