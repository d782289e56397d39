"""Vendors and screening lists end to end: `contract-bot lists load` on made-up files in the lists' real formats
(tests/fixtures/lists), filings linked to vendors and screened, matches disposed of, a later snapshot's
differences made vendor events, and the bad input of each."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN, MANAGER, MANAGERS, MEMBER, REVIEWER
from tests.e2e.test_compliance import cmd

LISTS = Path(__file__).resolve().parent.parent / "fixtures" / "lists"
NY = ZoneInfo("America/New_York")
OUTSIDER = "UOUTSIDE1"  # holds no role and filed nothing


def load(cli, *args: str) -> tuple[int, str, str]:
    return cli("lists", "load", *args)


def count(running, table: str) -> int:
    with running.bot.engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def file(running, vendor: str, product: str = "Graphite", agency: str = "ICE", **extra: str) -> str:
    more = " ".join(f'{k}="{v}"' for k, v in extra.items())
    return cmd(running, f'file vendor="{vendor}" product="{product}" agency="{agency}" {more}'.strip())


@pytest.mark.long
def test_filings_are_linked_to_vendors_and_screened(running, cli):
    code, out, _ = load(cli, "csl", str(LISTS / "csl.csv"), "--date", "2026-11-20")
    assert code == 0, out
    assert "6 entries" in out and "0 possible matches" in out and "SHA-256" in out

    # a listed vendor, written its own way: linked, and a possible match for a manager
    reply = file(running, "NIMBUS INTERCEPT SA")
    assert "New vendor *NIMBUS INTERCEPT SA*" in reply
    assert "1 possible screening-list match (M-1) was just found" in reply and "screen CR-1" in reply
    # the same vendor as the list writes it: the same vendor, the match already open
    reply = file(running, "Nimbus Intercept S.A.", product="Other", agency="FBI")
    assert "Linked to vendor *NIMBUS INTERCEPT SA*" in reply and "already open" in reply
    # a vendor on no list
    reply = file(running, "Paragon Solutions")
    assert "New vendor *Paragon Solutions*" in reply and "screening-list" not in reply
    # its look-alikes link to it and are told so; a near miss is another vendor
    reply = file(running, "Paragon Solutions (US) Inc.", agency="DEA")
    assert "Linked to vendor *Paragon Solutions*." in reply
    reply = file(running, "Paragon Solution", agency="FBI")
    assert "Linked to vendor *Paragon Solutions* (also known as Paragon Solution)" in reply
    reply = file(running, "Paragon Software Group", agency="FBI")
    assert "New vendor *Paragon Software Group*" in reply
    # a transliterated listing (the SDN's Cyrillic name, via its Latin alias) and parent= linked as the parent
    reply = file(running, "Korvet Systems", parent="Blue Lantern Group Ltd")
    assert (
        "New vendor *Korvet Systems*" in reply and "parent is recorded as *Blue Lantern Group Ltd*" in reply
    )
    assert "2 possible screening-list matches" in reply  # its own listing, and its parent's

    show = cmd(running, "show CR-1")
    assert "*Vendor:* NIMBUS INTERCEPT SA\n" in show  # "Nimbus Intercept S.A." is the same name, not an alias
    assert "*Screening:* M-1 NIMBUS INTERCEPT SA: “NIMBUS INTERCEPT SA” ~ “Nimbus Intercept S.A.”" in show
    assert "score 100) — open" in show

    # a manager disposes of it (audited, in the thread); others may not
    assert "*manager* role" in cmd(running, 'screen CR-1 M-1 no-match reason="x"', user=REVIEWER)
    reply = cmd(
        running,
        'screen CR-1 M-1 match reason="Same address in Athens as the Entity List entry"',
        user=MANAGER,
    )
    assert "M-1" in reply and "the vendor *is* the listed party" in reply
    assert "*match* by <@UMANAGE1>: Same address in Athens" in cmd(running, "show CR-2")
    running.deliver()
    assert any("Screening: M-1" in m["text"] for m in running.thread(1))
    with running.bot.engine.connect() as conn:
        detail = conn.execute(
            text("SELECT detail FROM audit_entry WHERE action = 'screen' AND outcome = 'ok'")
        ).scalar_one()
    assert "M-1" in detail and "open -> match" in detail
    # bad input: nothing changed
    assert "is not a screening match of CR-3" in cmd(
        running, 'screen CR-3 M-1 no-match reason="x"', user=MANAGER
    )
    assert "is not a screening match of CR-1" in cmd(
        running, 'screen CR-1 M-99 no-match reason="x"', user=MANAGER
    )
    assert "is not a screening match of CR-1" in cmd(
        running, 'screen CR-1 banana no-match reason="x"', user=MANAGER
    )
    assert "already marked match" in cmd(running, 'screen CR-1 M-1 match reason="again"', user=MANAGER)

    # vendor show: facts for anyone, contracts only for who may read them
    shown = cmd(running, "vendor show nimbus intercept", user=MANAGER)
    assert (
        "*NIMBUS INTERCEPT SA*" in shown
        and "CR-1 Graphite for ICE" in shown
        and "CR-2 Other for FBI" in shown
    )
    assert "M-1" in shown and "Consolidated Screening List of 2026-11-20" in shown
    outsider = cmd(running, "vendor show Nimbus Intercept S.A.", user=OUTSIDER)
    assert "M-1" in outsider and "Contracts: none you may read" in outsider and "CR-1" not in outsider
    assert "No vendor is called Nobody Inc" in cmd(running, "vendor show Nobody Inc")
    assert "Parent: Blue Lantern Group Ltd" in cmd(running, "vendor show Korvet Systems", user=MANAGER)


def test_aliases_affiliates_and_a_later_snapshot(running, cli):
    assert load(cli, "csl", str(LISTS / "csl.json"), "--date", "2026-11-20")[0] == 0
    file(running, "Paragon Solutions")
    file(running, "Vireo Analytics")  # not listed yet
    assert "*manager* role" in cmd(running, 'vendor alias Paragon Solutions alias="Halcyon"', user=MEMBER)
    assert "also goes by Graphite Labs" in cmd(
        running, 'vendor alias Paragon Solutions alias="Graphite Labs"', user=MANAGER
    )
    assert "No vendor is called Nobody" in cmd(running, 'vendor alias Nobody alias="x"', user=MANAGER)
    # a reseller on a list concerns the vendor's contracts
    reply = cmd(
        running, 'vendor affiliate Paragon Solutions other="Halcyon Signals" relation=reseller', user=MANAGER
    )
    assert (
        "Halcyon Signals recorded as reseller of Paragon Solutions" in reply and "1 possible match" in reply
    )
    assert "Halcyon Signals: “Halcyon Signals” ~ “Halcyon Signals Ltd.”" in cmd(running, "show CR-1")
    assert "Affiliates: Halcyon Signals (reseller)" in cmd(running, "vendor show Paragon Solutions")
    assert "relation" in cmd(
        running, 'vendor affiliate Paragon Solutions other="X" relation=cousin', user=MANAGER
    )

    # the next snapshot: Halcyon removed, Vireo added -> vendor events; new matches for the added one, told to the
    # managers (the loader reads the channel an admin set, or MANAGER_CHANNEL)
    assert "manager_channel" in cmd(running, f"admin set manager_channel {MANAGERS}", user=ADMIN)
    code, out, _ = load(cli, "csl", str(LISTS / "csl-2.csv"), "--date", "2026-11-27")
    assert code == 0 and "1 added and 1 removed, 2 vendor events" in out and "1 possible matches" in out
    # queued for the bot to send (the command line's clock is the machine's, the test bot's is not: not delivered here)
    with running.bot.engine.connect() as conn:
        rows = conn.execute(text("SELECT target, payload FROM outbox WHERE payload LIKE '%is loaded%'")).all()
    told = [json.loads(payload)["text"] for target, payload in rows if target == MANAGERS]
    assert len(told) == 1 and "Consolidated Screening List of 2026-11-27 is loaded" in told[-1]
    assert (
        "M-2 Vireo Analytics: “Vireo Analytics” ~ “Vireo Analytics GmbH”" in told[-1]
        and "2 vendor events" in told[-1]
    )
    halcyon = cmd(running, "vendor show Halcyon Signals", user=MANAGER)
    assert (
        "2026-11-27 list: “Halcyon Signals Ltd.” (Entity List (EL)" in halcyon
        and "was removed from" in halcyon
    )
    vireo = cmd(running, "vendor show Vireo Analytics", user=MANAGER)
    assert "was added to the Consolidated Screening List in the snapshot of 2026-11-27" in vireo
    assert "M-2" in vireo

    # the digest lists the open matches
    running.bot.sweeper.sweep()  # plans the next digest
    running.deliver()
    running.clock.set(datetime(2026, 11, 30, 9, 5, tzinfo=NY).astimezone(UTC))
    running.bot.sweeper.sweep()
    running.deliver()
    digest = [m["text"] for m in running.double.messages(MANAGERS) if "weekly digest" in m["text"]]
    assert (
        digest
        and "Open screening matches (2): M-1 Halcyon Signals ~ Halcyon Signals Ltd.; M-2 Vireo" in digest[-1]
    )


def test_lists_load_refuses_what_is_not_the_list(running, cli, tmp_path):
    full = (LISTS / "csl.csv").read_bytes()
    for args, said in [
        (("csl", str(LISTS / "sdn.csv")), "not the Consolidated Screening List"),
        (("sdn", str(LISTS / "csl.csv")), "not OFAC's sdn.csv"),
        (("sdn", str(LISTS / "sdn.csv"), "--alt", str(LISTS / "csl.csv")), "not OFAC's alias file"),
        (("csl", str(LISTS / "csl.csv"), "--alt", str(LISTS / "alt.csv")), "--alt is for OFAC's alt.csv"),
    ]:
        code, _, err = load(cli, *args)
        assert code == 1 and said in err and "nothing was stored" in err, (args, err)
    cut = tmp_path / "csl-cut.csv"
    cut.write_bytes(full[: len(full) - 40])
    code, _, err = load(cli, "csl", str(cut))
    assert code == 1 and "cut short" in err and len(err.strip().splitlines()) == 1
    cut_json = tmp_path / "csl-cut.json"
    cut_json.write_bytes((LISTS / "csl.json").read_bytes()[:900])
    code, _, err = load(cli, "csl", str(cut_json))
    assert code == 1 and "cut short" in err
    code, _, err = load(cli, "csl", str(LISTS / "csl.csv"), "--date", "2999-01-01")
    assert code == 2 and "future" in err
    assert count(running, "screening_snapshot") == 0 and count(running, "screening_entry") == 0

    # the SDN with its aliases; the same file twice is stored once
    code, out, _ = load(
        cli, "sdn", str(LISTS / "sdn.csv"), "--alt", str(LISTS / "alt.csv"), "--date", "2026-11-20"
    )
    assert code == 0 and "3 entries" in out
    code, out, _ = load(
        cli, "sdn", str(LISTS / "sdn.csv"), "--alt", str(LISTS / "alt.csv"), "--date", "2026-11-21"
    )
    assert code == 0 and "already loaded" in out
    assert count(running, "screening_snapshot") == 1
    # an SDN alias from alt.csv is screened: a filing under it is a possible match
    assert "possible screening-list match" in file(running, "Storm Petrel Tech Limited")
