"""Vendor events end to end (EO 14093 §2(j)): `vendor event` opens a §2(j) review on every open contract of the
vendor, its parent and its affiliates (and on no other), shown in `show` and the digest, reminded to the officials
by direct message and in the thread until an official records `redetermine` or `determine`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage import repositories as repo
from storage import vendors as vrepo
from storage.db import unit_of_work
from tests.conftest import MANAGER, MANAGERS, MEMBER, OFFICIAL, OFFICIAL2
from tests.e2e.test_stopwork_and_term import cmd, ny, sweep

NY = ZoneInfo("America/New_York")
EVENT = (
    'vendor event "Paragon Solutions" kind=report on=2026-11-20 '
    'note="Citizen Lab confirms Graphite infections forensically" source="Citizen Lab"'
)


def reviews_due_in(texts: list[str]) -> list[str]:
    """The §2(j) reminders in messages (reminders to one person at one moment are one message: its parts)."""
    return [part for t in texts for part in t.split("\n\n") if "Reminder: a §2(j) review of" in part]


def dms(running, user: str) -> list[str]:
    running.deliver()
    return reviews_due_in([m["text"] for m in running.double.messages(running.double.dm_channel(user))])


def thread_reminders(running, ref_id: int) -> list[str]:
    return reviews_due_in([m["text"] for m in running.thread(ref_id)])


@pytest.mark.long
def test_a_vendor_event_opens_reviews_on_the_right_contracts_until_an_official_decides(running):
    cmd(
        running, 'file vendor="Paragon Solutions" product=Graphite agency=ICE parent="AE Industrial Partners"'
    )
    cmd(running, 'file vendor="AE Industrial Partners" product=Holdings agency=DoD')  # the parent's own
    cmd(running, 'file vendor="Brokerage Corp" product=Resold agency=FBI')  # an affiliate (broker), below
    cmd(running, 'file vendor="Intellexa" product=Predator agency=DEA')  # unrelated
    cmd(running, 'file vendor="Paragon Solutions" product=Other agency=CBP anyway=yes')
    cmd(running, 'close CR-5 reason="ended"', user=MANAGER)  # closed: no review
    cmd(running, 'vendor affiliate "Paragon Solutions" other="Brokerage Corp" relation=broker', user=MANAGER)

    # bad input: one private reply, nothing recorded
    for text, user, expect in (
        (EVENT.replace("2026-11-20", "2026-12-01"), MANAGER, "future"),
        (
            EVENT.replace('"Paragon Solutions"', '"Paragn Solutions"'),
            MANAGER,
            "Did you mean *Paragon Solutions*",
        ),
        (
            EVENT.replace('"Paragon Solutions"', '"Nobody At All"'),
            MANAGER,
            "No vendor is called Nobody At All",
        ),
        (EVENT.replace("kind=report", "kind=rumour"), MANAGER, "kind"),
        (EVENT, MEMBER, "manager"),
    ):
        r = running.command(text, user=user)
        assert r.status == 200 and expect in r.json["text"], (text, r.json["text"])
    with unit_of_work(running.bot.session_factory) as s:
        assert all(vrepo.list_vendor_events(s, v) == [] for v, _, _ in vrepo.list_vendor_names(s))

    reply = cmd(running, EVENT, user=MANAGER)
    assert "Recorded a public report about *Paragon Solutions* of 2026-11-20" in reply
    assert "A §2(j) review is due on CR-1, CR-2, CR-3" in reply
    for ref in (1, 2, 3):
        shown = cmd(running, f"show CR-{ref}")
        assert (
            "§2(j) review due since 2026-11-20:* public report about Paragon Solutions of 2026-11-20: "
            in shown
        )
        assert "Citizen Lab confirms Graphite infections forensically (source: Citizen Lab)" in shown
        assert f"an official must `redetermine CR-{ref}` or `determine CR-{ref}`" in shown
        assert "New information (§2(j))" in running.thread(ref)[-1]["text"]
    for ref in (4, 5):
        assert "§2(j) review due" not in cmd(running, f"show CR-{ref}")
    with unit_of_work(running.bot.session_factory) as s:
        audited = [e for e in repo.list_audit(s, contract_id=1) if e.action == "review-due"]
    assert len(audited) == 1 and audited[0].actor == MANAGER

    # reminded at once: each official by direct message, and each thread
    sweep(running, running.clock.now())
    for official in (OFFICIAL, OFFICIAL2):
        sent = dms(running, official)
        assert len(sent) == 3 and all(
            t.startswith(":mag: Reminder: a §2(j) review of *CR-") for t in sent[:1]
        )
    assert len(thread_reminders(running, 1)) == 1
    text = thread_reminders(running, 1)[0]
    assert "due since 2026-11-20" in text and "/contract redetermine CR-1" in text and "Thread: " in text

    # the Monday digest lists them; the next reminders come 5 business days later (Thanksgiving skipped)
    sweep(running, ny(2026, 11, 30, 9))
    digest = [m["text"] for m in running.double.messages(MANAGERS) if "weekly digest" in m["text"]][-1]
    assert (
        "§2(j) reviews due (an official must `redetermine` or `determine`): CR-1 since 2026-11-20" in digest
    )
    assert len(dms(running, OFFICIAL)) == 3
    # an official decides on CR-1 and CR-2: their reviews are answered; CR-3's goes on
    cmd(running, 'determine CR-1 prohibited reason="IU-1: forensic confirmation"', user=OFFICIAL)
    cmd(running, 'determine CR-2 prohibited reason="same vendor group"', user=OFFICIAL)
    assert "§2(j) review due" not in cmd(running, "show CR-1")
    sweep(running, ny(2026, 12, 2, 8, 59))
    assert len(dms(running, OFFICIAL)) == 3
    sweep(running, ny(2026, 12, 2, 9))
    sent = dms(running, OFFICIAL)
    assert len(sent) == 4 and "*CR-3*" in sent[-1]
    assert len(thread_reminders(running, 1)) == 1 and len(thread_reminders(running, 3)) == 2

    # a second event while CR-3's review is open keeps it open from the first date, naming the newer event
    cmd(
        running,
        'vendor event "Brokerage Corp" kind=ownership on=2026-12-01 note="acquired by a holding company"',
        user=MANAGER,
    )
    shown = cmd(running, "show CR-3")
    assert "§2(j) review due since 2026-11-20:* ownership change about Brokerage Corp of 2026-12-01" in shown
    # redetermine answers it too (after a determination)
    cmd(running, 'determine CR-3 prohibited reason="broker of the same spyware"', user=OFFICIAL)
    assert "§2(j) review due" not in cmd(running, "show CR-3")


def test_a_screening_list_difference_opens_the_review_too(running, cli):
    """`contract-bot lists load`: an entry added to the next snapshot that names a vendor is a vendor event, and the
    loader opens the §2(j) reviews (bot.services.vendor_events.open_reviews_for_event) in the same transaction."""
    lists = Path(__file__).resolve().parent.parent / "fixtures" / "lists"
    assert cli("lists", "load", "csl", str(lists / "csl.csv"), "--date", "2026-11-20")[0] == 0
    cmd(running, 'file vendor="Vireo Analytics" product=Sensor agency=DEA')
    cmd(running, 'file vendor="Intellexa" product=Predator agency=FBI')
    code, out, _ = cli("lists", "load", "csl", str(lists / "csl-2.csv"), "--date", "2026-11-24")
    assert code == 0, out
    shown = cmd(running, "show CR-1")
    assert (
        "§2(j) review due since 2026-11-24:* screening-list change about Vireo Analytics of 2026-11-24"
        in shown
    )
    assert "§2(j) review due" not in cmd(running, "show CR-2")
    sweep(running, datetime.now(UTC) + timedelta(minutes=1))  # the command line runs on the system's clock
    assert len(dms(running, OFFICIAL)) == 1 and len(thread_reminders(running, 1)) == 1
