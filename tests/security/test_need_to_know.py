"""Attack tests for need-to-know (issue 14, SPEC "Access"; AC-3, AC-6), over HTTP on SQLite and PostgreSQL.

A workspace member with no role tries to read someone else's contract by every read path (`show`, `audit`, `list`,
the audit page button, App Home), from the review channel and from a direct message, and to learn whether a contract
exists by naming it in any command. A restricted contract is read by a reviewer not assigned to it (refused) and by
a manager, an official and its filer (allowed, each read audited)."""

from __future__ import annotations

from sqlalchemy import text

from bot.domain import access
from bot.domain.access import ContractFacts, Reader
from handlers.ids import ActionId
from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import ADMIN, MANAGER, MEMBER, OFFICIAL, REVIEW, REVIEWER
from tests.support.replies import flat

STRANGER = "USTRANGER1"  # a workspace member: no role, filed nothing, assigned to nothing
REVIEWER2 = "UREVIEW2"  # a reviewer who will be assigned to the restricted contract
DM = "DSTRANGER1"


def say(running, text: str, user: str, channel: str = REVIEW) -> str:
    """One `/contract` command; its private reply as one string."""
    r = running.slack.command(text, user_id=user, channel_id=channel)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def press_more(running, action_id: str, value: str, user: str) -> str:
    """Press a More button (its value names the contract and page): the one private answer."""
    url = running.double.new_response_url(channel=REVIEW, user=user)
    r = running.slack.block_action(
        user_id=user, action_id=action_id, value=value, block_id="more", channel_id=REVIEW, response_url=url
    )
    assert r.status == 200
    assert running.double.wait_for(lambda d: d.responses(url), timeout=15)
    return flat(running.double.responses(url)[0]["body"])


def open_home(running, user: str) -> str:
    """app_home_opened as Slack sends it; the Home view published for ``user``, as one string."""
    old = (running.double.home_view(user) or {}).get("id")
    r = running.slack.event(
        {
            "type": "app_home_opened",
            "user": user,
            "channel": "D" + user[1:],
            "tab": "home",
            "event_ts": "1.000001",
        }
    )
    assert r.status == 200
    running.double.wait_for(lambda d: (d.home_view(user) or {}).get("id") not in (None, old))
    return flat(running.double.home_view(user))


def audit_of(running, ref: int | None) -> list:
    with unit_of_work(running.bot.session_factory) as s:
        return repo.list_audit(s, contract_id=ref)


def file(running, vendor: str, by: str = MEMBER) -> int:
    done = running.bot.service.file_contract(by, {"vendor": vendor, "product": "Graphite", "agency": "ICE"})
    assert done.contract_id is not None
    return done.contract_id


def test_a_member_without_a_role_learns_nothing_of_anothers_contract(running):
    cid = file(running, "Paragon Solutions")
    running.bot.service.stopwork(MANAGER, cid, "verify EO 14093 compliance")  # so App Home would list it
    hidden, missing = access.hidden(f"CR-{cid}"), access.hidden("CR-99")

    # every read path, from the review channel and from a direct message: the words of a missing contract
    for channel in (REVIEW, DM):
        assert say(running, f"show CR-{cid}", STRANGER, channel) == hidden
        assert say(running, "show CR-99", STRANGER, channel) == missing
        assert say(running, f"audit CR-{cid}", STRANGER, channel) == hidden
        assert (
            say(running, f"audit CR-{cid} page=2", STRANGER, channel) == hidden
        )  # not "page 2 does not exist"
        assert say(running, "audit CR-99", STRANGER, channel) == missing
        listed = say(running, "list", STRANGER, channel)
        assert "Paragon" not in listed and f"CR-{cid}" not in listed
        assert "Paragon" not in say(running, "list stop-work", STRANGER, channel)
    assert press_more(running, ActionId.AUDIT_MORE.value, f"{cid}:1", STRANGER) == hidden
    assert press_more(running, ActionId.AUDIT_MORE.value, "99:1", STRANGER) == missing
    home = open_home(running, STRANGER)
    assert "Paragon" not in home and f"CR-{cid}" not in home and "stop-work: *1*" not in home

    # naming it in any command tells nothing more than naming one that does not exist: the role is refused first
    for words in (
        'stopwork CR-{} reason="x"',
        "answer CR-{} SCOPE-1 yes",
        "restrict CR-{}",
        'reopen CR-{} reason="x"',
    ):
        there = say(running, words.format(cid), STRANGER)
        assert there == say(running, words.format(99), STRANGER).replace("CR-99", f"CR-{cid}"), words
        assert "needs the *" in there
    # a role holder who may not act is refused for the role, whichever contract: the same words again
    assert say(running, f"assign CR-{cid} <@{REVIEWER}>", REVIEWER) == say(
        running, f"assign CR-99 <@{REVIEWER}>", REVIEWER
    )

    # the refused reads of a real contract are in its audit log (not those of a missing one); nothing else changed
    refused = [e for e in audit_of(running, cid) if e.actor == STRANGER and e.action in ("show", "audit")]
    assert refused and all(e.outcome == "refused" and "need-to-know" in (e.detail or "") for e in refused)
    assert not [
        e
        for e in audit_of(running, None)
        if e.actor == STRANGER and e.contract_id is None and e.action == "show"
    ]

    # its filer, and anyone holding a role, still reads it (an unrestricted read is not audited)
    before = len(audit_of(running, cid))
    for reader in (MEMBER, REVIEWER, OFFICIAL):
        assert "Paragon" in say(running, f"show CR-{cid}", reader, DM)
        assert f"CR-{cid}" in say(running, "list", reader)
    assert len(audit_of(running, cid)) == before
    assert "Paragon" in open_home(running, MEMBER)


def test_a_restricted_contract_is_read_only_by_those_who_need_to_and_every_read_is_audited(running):
    svc = running.bot.service
    other = file(running, "Other Vendor")
    cid = file(running, "Paragon Solutions")
    svc.grant(ADMIN, REVIEWER2, "reviewer")
    svc.assign(MANAGER, cid, [REVIEWER2])
    svc.stopwork(MANAGER, cid, "verify EO 14093 compliance")

    assert "needs the *manager* role" in say(running, f"restrict CR-{cid}", REVIEWER)
    assert "is restricted" in say(running, f"restrict CR-{cid}", MANAGER)
    assert "already restricted" in say(running, f"restrict CR-{cid}", MANAGER)
    entry = audit_of(running, cid)[-1]
    assert (entry.action, entry.actor, entry.outcome) == ("restrict", MANAGER, "ok")
    shown = say(running, f"show CR-{cid}", MANAGER)
    assert ":lock: *Restricted:* every read of it is in its audit log" in shown

    # a reviewer not assigned to it: refused everywhere, in the words of a missing contract
    hidden = access.hidden(f"CR-{cid}")
    for channel in (REVIEW, DM):
        assert say(running, f"show CR-{cid}", REVIEWER, channel) == hidden
        assert say(running, f"audit CR-{cid}", REVIEWER, channel) == hidden
        assert say(running, f"answer CR-{cid} SCOPE-1 yes", REVIEWER, channel) == hidden
        listed = say(running, "list", REVIEWER, channel)
        assert "Paragon" not in listed and f"CR-{other}" in listed
    assert "Paragon" not in open_home(running, REVIEWER)

    # its filer (no role), its assigned reviewer, a manager and an official read it: each read is audited
    reads = len([e for e in audit_of(running, cid) if e.action == "read"])
    for reader, words, via in (
        (MANAGER, f"show CR-{cid}", "show"),
        (OFFICIAL, f"audit CR-{cid}", "audit page 1"),
        (REVIEWER2, f"show CR-{cid}", "show"),
        (MEMBER, f"show CR-{cid}", "show"),
        (MANAGER, "list", "list"),
    ):
        for channel in (REVIEW, DM):
            reply = say(running, words, reader, channel)
            assert reply != hidden and ("Paragon" in reply or "*restrict*" in reply), (reader, words, reply)
            last = audit_of(running, cid)[-1]
            assert (last.action, last.actor, last.detail, last.outcome) == ("read", reader, via, "ok"), last
            reads += 1
    assert "Paragon" in open_home(running, MANAGER)
    last = audit_of(running, cid)[-1]
    assert (last.action, last.actor, last.detail) == ("read", MANAGER, "App Home")
    assert len([e for e in audit_of(running, cid) if e.action == "read"]) == reads + 1
    assert not [e for e in audit_of(running, other) if e.action == "read"]  # an unrestricted one: not audited

    # the export (managers and admins) reads every restricted contract: audited too
    assert "CSV" in say(running, "admin export", MANAGER)
    running.double.wait_for(lambda d: len(d.files()) == 1)
    assert running.double.files()[0]["channel_id"] == running.double.dm_channel(MANAGER)
    assert any(e.action == "read" and e.detail == "admin export" for e in audit_of(running, cid))
    assert "*manager* or *admin* role" in say(running, "admin export", REVIEWER)
    typo = say(running, "admin export xml", MANAGER)  # a manager's typo is a typo, not a missing role
    assert "xml" in typo and "role" not in typo, typo

    # unrestricted: every role holder reads it again, unaudited
    assert "no longer restricted" in say(running, f"unrestrict CR-{cid}", MANAGER)
    assert "Paragon" in say(running, f"show CR-{cid}", REVIEWER)
    assert audit_of(running, cid)[-1].action == "unrestrict"
    assert say(running, f"show CR-{cid}", STRANGER) == hidden  # still nobody's without a role


def test_filing_a_look_alike_does_not_reveal_a_contract_the_filer_may_not_read(running):
    cid = file(running, "Paragon Solutions")
    words = 'file vendor="Paragon Solutions" product=Graphite agency=ICE'
    assert f"looks like *CR-{cid}*" in say(running, words, REVIEWER)  # a role holder may read it: warned
    filed = say(running, words, STRANGER)  # may not read it: it is not named, and the filing goes ahead
    assert filed.startswith("Filed *CR-") and f"CR-{cid}" not in filed
    assert f"looks like *CR-{cid}*" in say(running, words, MEMBER)  # its own filer is warned


def test_a_restricted_contract_quietly_unrestricted_in_the_database_is_caught(running, cli, monkeypatch):
    """Someone holding the database clears the flag so that every role holder may read it: `audit verify` says so."""
    cid = file(running, "Paragon Solutions")
    running.bot.service.restrict(MANAGER, cid)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", running.double.api_url)
    assert cli("audit", "verify", "--no-checkpoints")[0] == 0
    with running.bot.engine.begin() as conn:
        conn.execute(text("UPDATE contract SET restricted = false WHERE id = :id"), {"id": cid})
    code, _, err = cli("audit", "verify", "--no-checkpoints")
    assert code == 1
    assert f"CR-{cid}: its stored restricted is False but its audit trail says True" in err


def test_list_shows_exactly_the_contracts_each_person_may_read(running):
    """The list query (storage) and the rule (bot.domain.access.may_read) agree, for every kind of reader."""
    svc = running.bot.service
    mine = file(running, "Mine", by=STRANGER)
    others = file(running, "Others")
    secret = file(running, "Secret")
    svc.grant(ADMIN, REVIEWER2, "reviewer")
    svc.assign(MANAGER, secret, [REVIEWER2])
    svc.restrict(MANAGER, secret)
    hidden_mine = file(running, "Hidden mine", by=STRANGER)
    svc.restrict(MANAGER, hidden_mine)
    every = (mine, others, secret, hidden_mine)
    with unit_of_work(running.bot.session_factory) as s:
        facts = {
            cid: ContractFacts(c.filed_by, c.restricted, frozenset(repo.list_assignments(s, cid)))
            for cid, c in repo.get_contracts(s, set(every)).items()
        }
    for user in (STRANGER, MEMBER, REVIEWER, REVIEWER2, MANAGER, OFFICIAL, ADMIN):
        reader = Reader.of(user, _roles(running, user))
        listed = {int(v.ref.removeprefix("CR-")) for v in svc.list_contracts(reader=user).rows}
        assert listed == {cid for cid in every if access.may_read(facts[cid], reader)}, user
        shown = {cid for cid in every if _shows(running, cid, user)}
        assert shown == listed, user


def _roles(running, user: str) -> set[str]:
    with unit_of_work(running.bot.session_factory) as s:
        return running.bot.service.roles_of(s, user)


def _shows(running, cid: int, user: str) -> bool:
    try:
        running.bot.service.show(cid, reader=user)
    except access.NotVisible:
        return False
    return True
