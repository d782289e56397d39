"""The outbox as Slack really is, end to end against the strict double (rate limits at SLACK_RATE_SCALE x):
a burst of filings and a reviewer answering every question as soon as it appears draws no 429, posts go at
1 per second per channel (scaled), edits of the parent coalesce, and each parent's permalink is stored."""

from __future__ import annotations

import re
import time

import pytest

from storage import repositories as repo
from storage.db import read_only
from tests.conftest import REVIEW, REVIEWER, SLACK_RATE_SCALE

FILE = 'file vendor="Paragon Solutions" product=Graphite{n} agency=ICE purpose=operational'
QUESTION = re.compile(r"^CR-(\d+) ([A-Z]+-\d+):")


def wait_until(predicate, timeout: float = 60.0, every: float = 0.02):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', predicate)}"
    )


def outbox_idle(running) -> bool:  # noqa: ANN001
    """Nothing is pending in the outbox."""
    with read_only(running.bot.session_factory) as s:
        return repo.count_outbox(s, "pending") == 0


def review_one_contract_as_questions_appear(running, ref: int) -> int:  # noqa: ANN001
    """A reviewer answers every question of CR-``ref`` as soon as it is posted (through the background delivery
    loop, as in production), until no new question comes; returns how many were answered."""
    answered: set[str] = set()
    parent_ts = wait_until(lambda: running.bot.service.show(ref).parent_ts)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.5:
        new = []
        for m in running.double.thread(REVIEW, parent_ts):
            match = QUESTION.match(m.get("text") or "")
            if match and int(match.group(1)) == ref and match.group(2) not in answered:
                new.append(match.group(2))
        for qid in new:
            # "no" keeps the review going: SCOPE-1 = No would end it, CI/IU = Yes are red flags needing more
            value = "yes" if qid.startswith(("SCOPE", "PROC")) else "no"
            r = running.command(f"answer CR-{ref} {qid} {value}", user=REVIEWER)
            assert "Recorded" in r.json["text"], r.json
            answered.add(qid)
        if new or not outbox_idle(running):
            quiet_since = time.monotonic()
        time.sleep(0.02)
    return len(answered)


@pytest.mark.long
def test_three_filings_and_a_full_review_draw_no_429_and_coalesce_parent_edits(running):
    double = running.double
    started = time.monotonic()  # the double's Call.at is time.monotonic() too; nothing was posted before
    for n in range(1, 4):
        assert "CR-" in running.command(FILE.format(n=n)).json["text"]
    answered = review_one_contract_as_questions_appear(running, 1)
    wait_until(lambda: outbox_idle(running))
    assert answered >= 15, answered
    assert double.rate_limited() == [], double.rate_limited_counts()
    updates = len(double.calls("chat.update"))
    print(f"\n429s: {len(double.rate_limited())}; chat.update: {updates} for {answered} answers")
    assert updates / answered <= 1.5, (updates, answered)
    # every parent's link came from chat.getPermalink and is kept on the contract
    for ref in (1, 2, 3):
        c = running.bot.service.show(ref)
        assert c.parent_ts
    with read_only(running.bot.session_factory) as s:
        links = [repo.get_contract(s, ref).permalink for ref in (1, 2, 3)]
    assert all(link and link.startswith("https://") for link in links), links
    assert len(double.calls("chat.getPermalink")) == 3
    # posts to the review channel never went faster than Slack's 1 per second (scaled), judged as a rate limiter
    # with no burst would: the k-th (from 0) no sooner than k intervals after the start. A busy machine can only
    # make a post late, never early, so this cannot fail for want of CPU (the span from the first post to the last
    # could: a first post late, the rest on time).
    posts = sorted(c.at for c in double.calls("chat.postMessage") if c.params.get("channel") == REVIEW)
    interval = 1.0 / SLACK_RATE_SCALE
    early = {k: round(t - started, 3) for k, t in enumerate(posts) if t - started < k * interval * 0.9}
    assert not early, f"posts sooner than 1 per {interval} s (post: seconds after the start): {early}"
