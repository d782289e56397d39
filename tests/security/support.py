"""Helpers of the attack suite: send a signed request, then send the very same bytes again (a captured request)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.slack_requests import SlackRequester, SlackResponse

FORM = "application/x-www-form-urlencoded"


@dataclass
class Captured:
    """A signed request as it went over the wire: its body and timestamp (the signature follows from them)."""

    body: bytes
    timestamp: str
    content_type: str
    first: SlackResponse

    def replay(self, slack: SlackRequester) -> SlackResponse:
        """Send the identical body, timestamp and signature again (to this bot, or another process of it)."""
        return slack.raw(self.body, self.content_type, timestamp=self.timestamp)


def capture(send: Callable[..., SlackResponse], content_type: str = FORM, **kw: Any) -> Captured:
    """Send a request through one of SlackRequester's payload methods and keep what went over the wire."""
    timestamp = str(int(time.time()))
    bodies: list[bytes] = []

    def keep(body: bytes) -> bytes:
        bodies.append(body)
        return body

    first = send(timestamp=timestamp, tamper=keep, **kw)
    return Captured(bodies[0], timestamp, content_type, first)
