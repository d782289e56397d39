"""`contract-bot demo`: the ICE / Paragon timeline (EO14093.md §5) replayed through the console machinery."""

from __future__ import annotations

import fcntl
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.console import run_demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def transcript(tmp_path_factory, worker_id: str) -> str:
    """The demo's transcript, replayed once for the run. Its tests are spread over the xdist workers (an
    xdist_group would not keep them on one: pytest-xdist 3.8 marks the group in a node id that pytest 9 no longer
    reads), so the workers share it through a file: the first to take the lock replays the demo (3 s)."""
    if worker_id == "master":  # one process: this module-scoped fixture is made once anyway
        return _replay_demo()
    shared = (
        tmp_path_factory.getbasetemp().parent / "demo-transcript.txt"
    )  # this run's, shared by its workers
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not shared.exists():
            shared.write_text(_replay_demo(), encoding="utf-8")
        return shared.read_text(encoding="utf-8")


def _replay_demo() -> str:
    out = io.StringIO()
    assert run_demo(stdout=out) == 0
    return out.getvalue()


def _after(text: str, marker: str) -> str:
    assert marker in text, marker
    return text.split(marker, 1)[1]


def test_milestones_appear_in_order_on_their_dates(transcript):
    milestones = [
        "Time is now Fri 2024-09-27 10:00 EDT.",
        "Filed CR-1: Paragon Solutions / unnamed (Graphite UNCONFIRMED) for ICE.",
        "Time is now Tue 2024-10-08 10:00 EDT.",
        "Stop-work order on CR-1 from 2024-10-08",
        "(@rae pressed [1] Yes)",
        "Recorded CR-1 CI-4: Yes (red flag).",
        "Recorded CR-1 CI-4: No.",  # revisited after the Dec 2024 acquisition
        "lapsed on 2025-01-06 (FAR 52.242-15, 90 days)",  # no extension is public: the bot flags the lapse
        "Recorded a public report about Paragon Solutions of 2025-01-31",  # [public] WhatsApp
        "A §2(j) review is due on CR-1",
        "Recorded CR-1 IU-1: Yes (red flag).",
        "Recorded a public report about Paragon Solutions of 2025-06-05",  # [public] COPASIR
        "Recorded a public report about Paragon Solutions of 2025-06-12",  # [public] Citizen Lab
        "Stop-work order on CR-1 lifted on 2025-08-29 (in effect since 2024-10-08, 325 days)",
        "Lifting the stop-work order is not a compliance finding: the executive order's conditions are not met.",
        "§2(j) review due since 2025-01-31",
        "Determination (§2(a)) on CR-1: not-risky on 2025-09-15.",  # [supposed] from here on
        "CR-1 certified not-risky (§2(f)) by the Secretary of Homeland Security on 2025-09-17.",
        "APNSA notified (§2(g)) for CR-1 on 2025-09-18. No operational use before 2025-09-25",
        "Reminder: the waiting period on CR-1 is over",
        "Operational use is permitted",
        "CR-1 closed on 2026-01-20",
    ]
    rest = transcript
    for milestone in milestones:
        rest = _after(rest, milestone)


def test_unknown_facts_are_labelled_supposed(transcript):
    for marker in (
        "[supposed] The reviewer starts scoping",
        "[supposed] The relevant official",
        "[supposed] The agency head notifies the APNSA",
    ):
        assert marker in transcript
    assert "UNCONFIRMED" in transcript
    assert transcript.count("[public]") >= 4


def test_reminders_fired_while_time_passed(transcript):
    fired = _after(transcript, "==== Reminders that fired ====").split("==== Final record ====")[0]
    assert "2024-10-09 10:00 #compliance-managers: [STOP] Reminder: the stop-work order on CR-1" in fired
    assert "#contract-reviews (thread): Reminder: @rae" in fired  # unanswered questions, in the thread
    assert "Reminder: the waiting period on CR-1 is over" in fired
    assert "weekly digest" in fired
    # the stop-work reminder stops once the order is lifted
    stopwork_days = re.findall(
        r"(\d{4}-\d{2}-\d{2}) \d\d:\d\d #compliance-managers: \[STOP\] Reminder", fired
    )
    assert stopwork_days and max(stopwork_days) <= "2025-08-29"


def test_final_show_and_audit(transcript):
    final = _after(transcript, "==== Final record ====")
    show = _after(final, "max> /contract show CR-1").split("max> /contract audit CR-1")[0]
    assert "closed" in show and "answered 20 of 20" in show and "1 red flag (IU-1)" in show
    assert "Certification (§2(f)): Secretary of Homeland Security on 2025-09-17" in show
    assert "APNSA notice (§2(g)): 2025-09-18; waiting period ends 2025-09-25" in show
    assert "§2(j) review due" not in show  # the determination answered it
    audit = _after(final, "max> /contract audit CR-1")
    assert "Audit timeline of CR-1" in audit
    for action in (
        "@mel file",
        "@max assign",
        "@max stopwork",
        "@rae answer",
        "@olu determine",
        "@oba certify",
        "@max notify",
        "@max resume",
        "@max close",
    ):
        assert action in audit, action
    assert "answer: yes → no" in audit  # the changed CI-4 answer keeps both versions


@pytest.mark.long
def test_the_command_line_demo_exits_0(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # a folder of its own: nothing is written beside the code
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "CR-1 closed on 2026-01-20" in done.stdout
    assert "Traceback" not in done.stderr


def test_every_reply_came_back_with_its_acknowledgement(transcript):
    assert "Working on it" not in transcript  # the console's ack budget is long enough
    assert "Something went wrong" not in transcript and "HTTP" not in transcript
    assert "(the console could not run that line" not in transcript
    assert "Slack refused" not in transcript  # every payload of the whole timeline passes Slack's checks
