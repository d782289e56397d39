"""The ICE HSI x Paragon timeline (EO14093.md §5) replayed end to end over real HTTP.

Public record: award 2024-09-27; stop-work 2024-10-08 (to verify EO 14093 compliance); AE Industrial Partners
acquires Paragon in Dec 2024 (bears on CI-4); WhatsApp reports misuse in Europe in Jan 2025 (bears on IU-1);
stop-work lifted 2025-08-29 (public notice date); contract closed out in January 2026 (2026-01-20 UNCONFIRMED).

[supposed] The public record is silent on the reviewers' answers, the determination, the certification and the
APNSA notice; like `contract-bot demo`, these tests suppose the path EO 14093 requires: determination 2025-08-11,
certification by the Secretary of Homeland Security 2025-08-13, APNSA notice 2025-08-14 (wait ends 2025-08-21).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import MANAGER, MEMBER, OFFICIAL, OFFICIAL2, REVIEW, REVIEWER
from tests.support.replies import flat

FILE_ICE = (
    'file vendor="Paragon Solutions" product="unnamed (Graphite UNCONFIRMED)" agency=ICE '
    'component="HSI Division 3" value=2000000 awarded=2024-09-27 term="one year" purpose=operational '
    'third_party=no parent="Paragon Solutions Ltd. (Israel)"'
)

# [supposed] answers: CI-4 No after the Dec 2024 U.S. acquisition; IU-1 Yes after the Jan 2025 WhatsApp report.
ANSWERS = {
    **{f"SCOPE-{i}": "yes" for i in (1, 2, 4, 5)},
    "SCOPE-3": "no",
    "PROC-1": "unknown",
    "PROC-2": "unknown",
    "PROC-3": "yes",
    "PROC-4": "unknown",
    "CI-1": "no",
    "CI-2": "no",
    "CI-3": "no",
    "CI-4": "no",
    "IU-1": "yes",
    "IU-2": "no",
    "IU-3": "no",
    "MIT-1": "yes",
    "MIT-2": "yes",
    "MIT-3": "yes",
    "MIT-4": "yes",
}
DETERMINE = (
    'determine CR-1 not-risky reason="[supposed] IU-1: vendor ended the Italian contracts (MIT-2) and now '
    'operates under U.S. ownership with verifiable end-use controls"'
)


def say(running, text: str, user: str = MEMBER) -> str:
    r = running.command(text, user=user)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def show(running) -> str:
    return say(running, "show CR-1")


def last_line(running) -> str:
    return running.thread(1)[-1]["text"]


def parent(running) -> str:
    return running.parent(1)["text"]


def answer(running) -> None:
    for qid, value in ANSWERS.items():
        assert "Recorded" in say(running, f"answer CR-1 {qid} {value}", user=REVIEWER), qid


@pytest.mark.long
def test_ice_paragon_recorded_after_the_fact_with_backdated_dates(running):
    """Recorded today (2026-11-24) from the record, every dated step with `on=`: every clock shifts."""
    assert "Filed *CR-1*" in say(running, FILE_ICE)
    say(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    text = show(running)
    assert "intake" in text and "Operational use is not permitted" in text

    # 2024-10-08 [public]: stop-work, 11 days after the award
    say(running, 'stopwork CR-1 reason="verify EO 14093 compliance" on=2024-10-08', user=MANAGER)
    assert "Stop-work order on CR-1 from 2024-10-08" in last_line(running)
    assert "stop-work" in parent(running)
    text = show(running)
    assert "stop-work order has been in effect since 2024-10-08 (777 days" in text
    assert "*Stop-work:* in effect since 2024-10-08 (777 days): verify EO 14093 compliance" in text

    # [supposed] the review; IU-1 is a red flag, mitigations answered
    answer(running)
    assert "answered 20 of 20" in parent(running) and "1 red flag (IU-1)" in parent(running)
    text = show(running)
    assert "a `not-risky` determination" in text and "stop-work" in text

    # a reason that does not address IU-1 is refused, and the refusal is on the record
    refused = say(
        running, 'determine CR-1 not-risky reason="vendor is U.S.-owned now" on=2025-08-11', user=OFFICIAL
    )
    assert "missing: IU-1" in refused
    # a future date is refused
    assert "future" in say(running, f"{DETERMINE} on=2026-12-01", user=OFFICIAL)
    say(running, f"{DETERMINE} on=2025-08-11", user=OFFICIAL)
    assert "Determination (§2(a)) on CR-1: *not-risky* on 2025-08-11" in last_line(running)
    say(running, 'certify CR-1 official="Secretary of Homeland Security" on=2025-08-13', user=OFFICIAL2)
    assert "certified not-risky (§2(f)) by the Secretary of Homeland Security on 2025-08-13" in last_line(
        running
    )
    say(running, "notify CR-1 on=2025-08-14", user=MANAGER)
    assert "No operational use before 2025-08-21" in last_line(running)
    text = show(running)
    # every EO condition holds; only the stop-work order still blocks use
    assert "Operational use is not permitted" in text
    assert "waiting period ends 2025-08-21" in text
    assert "certification by" not in text and "notice to the APNSA" not in text and "days left" not in text
    assert "stop-work order has been in effect since 2024-10-08" in text
    assert "stop-work" in parent(running)
    # the APNSA can no longer cut a wait that ended on 2025-08-21
    assert "already ended on 2025-08-21" in say(running, "clear CR-1 on=2025-08-22", user=MANAGER)
    # only a manager lifts a stop-work order; the attempt is refused and recorded
    assert "*manager* role" in say(running, 'resume CR-1 reason="x" on=2025-08-29', user=OFFICIAL)

    # 2025-08-29 [public]: the stop-work order is lifted after about 325 days
    say(
        running,
        'resume CR-1 reason="contract modification lifts the stop-work order" on=2025-08-29',
        user=MANAGER,
    )
    assert "lifted on 2025-08-29 (in effect since 2024-10-08, 325 days)" in last_line(running)
    assert "cleared" in parent(running)
    text = show(running)
    assert "Operational use is permitted" in text and "*Stop-work:* none in effect" in text

    # 2026-01-20 [public, date UNCONFIRMED]: closed out
    say(running, 'close CR-1 reason="contract closed out (NPR, January 2026)" on=2026-01-20', user=MANAGER)
    assert "closed on 2026-01-20" in last_line(running)
    assert "closed" in parent(running)
    text = show(running)
    assert "Closed on 2026-01-20" in text and "not permitted" not in text  # closed, shown as such
    assert "*Closed:* 2026-01-20" in text
    assert "accepts only" in say(running, 'stopwork CR-1 reason="again"', user=MANAGER)

    timeline = say(running, "audit CR-1")
    steps = [
        "*file*",
        "*stopwork* — on 2024-10-08",
        "refused *determine*",
        "*determine* — on 2025-08-11",
        "*certify* — on 2025-08-13",
        "*notify* — on 2025-08-14",
        "refused *clear*",
        "refused *resume*",
        "*resume* — on 2025-08-29",
        "*close* — on 2026-01-20",
        "refused *stopwork*",
    ]
    at = [timeline.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), list(zip(steps, at, strict=True))
    assert (
        timeline.count(":no_entry_sign: refused") == 5
    )  # the determination, the future date, clear, resume and the stop-work
    assert timeline.count("*answer*") == len(ANSWERS)


@pytest.mark.long
def test_ice_paragon_live_each_step_on_its_day(running):
    """The same timeline with the clock on each day: what `show` said on the day."""

    def on(day: str) -> None:
        running.clock.set(datetime.fromisoformat(day).replace(hour=15, tzinfo=UTC))

    on("2024-09-27")
    say(running, FILE_ICE)
    on("2024-10-08")
    say(running, 'stopwork CR-1 reason="verify EO 14093 compliance"', user=MANAGER)
    on("2024-10-09")
    answer(running)
    on("2025-08-11")
    say(running, DETERMINE, user=OFFICIAL)
    assert "*Stop-work:* in effect since 2024-10-08 (307 days)" in show(running)
    on("2025-08-13")
    say(running, 'certify CR-1 official="Secretary of Homeland Security"', user=OFFICIAL2)
    on("2025-08-14")
    say(running, "notify CR-1", user=MANAGER)
    on("2025-08-18")
    text = show(running)
    # two things missing on the day: the stop-work order and 3 more days of the waiting period
    assert "stop-work order has been in effect since 2024-10-08 (314 days" in text
    assert "3 days left, ends 2025-08-21" in text
    on("2025-08-21")
    text = show(running)
    assert "days left" not in text and "stop-work order" in text and "not permitted" in text
    on("2025-08-29")
    say(running, 'resume CR-1 reason="contract modification lifts the stop-work order"', user=MANAGER)
    assert "325 days" in last_line(running)
    assert "Operational use is permitted" in show(running)
    on("2026-01-20")
    say(running, 'close CR-1 reason="contract closed out"', user=MANAGER)
    text = show(running)
    assert "closed" in parent(running) and "Closed on" in text and "not permitted" not in text
    # the thread carries one line per step, oldest first
    lines = [m["text"] for m in running.double.thread(REVIEW, running.bot.service.show(1).parent_ts)]
    marks = [
        "Stop-work order on CR-1 from 2024-10-08",
        "Determination (§2(a))",
        "certified not-risky",
        "APNSA notified",
        "lifted on 2025-08-29",
        "closed on 2026-01-20",
    ]
    found = [next(i for i, line in enumerate(lines) if mark in line) for mark in marks]
    assert found == sorted(found)
