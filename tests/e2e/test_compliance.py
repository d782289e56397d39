"""The compliance clock end to end over real HTTP: every manager and official action, what `show` says at each
step, refusals that change nothing but the audit log, admin alerts, and the admin export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.domain.questions import QUESTIONS
from bot.services.exports import csv_rows, flatten
from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import ADMIN, MANAGER, MANAGERS, MEMBER, OFFICIAL, OFFICIAL2, REVIEWER
from tests.support.replies import flat

FILE = (
    'file vendor="Paragon Solutions" product=Graphite agency=ICE component="HSI Division 3" '
    "value=2000000 awarded=2024-09-27 purpose=operational"
)
DHS = 'official="Secretary of Homeland Security"'


def cmd(running, text: str, user: str = MEMBER) -> str:
    """Run a command; assert it was one ephemeral reply; return its flattened text."""
    r = running.command(text, user=user)
    assert r.status == 200, text
    assert r.json.get("response_type") == "ephemeral", (text, r.json)
    return flat(r.json)


def show(running, ref: int = 1) -> str:
    return cmd(running, f"show CR-{ref}")


def answer_all(running, ref: int = 1, flags: tuple[str, ...] = (), *, http: bool = False) -> None:
    """A reviewer answers every question in order: SCOPE/PROC yes, CI/IU no unless flagged, MIT yes.

    Over HTTP when ``http``; otherwise through the same service call the command makes (faster setup).
    """
    for q in QUESTIONS:
        value = "yes" if q.section in ("SCOPE", "PROC", "MIT") or q.qid in flags else "no"
        if http:
            text = cmd(running, f"answer CR-{ref} {q.qid} {value}", user=REVIEWER)
        else:
            text = running.bot.service.answer(REVIEWER, ref, q.qid, value).text
        assert "Recorded" in text, text


def audit_entries(running, ref: int | None = 1):
    with unit_of_work(running.bot.session_factory) as s:
        return repo.list_audit(s, contract_id=ref)


def last_line(running, ref: int = 1) -> str:
    return running.thread(ref)[-1]["text"]


def parent_status(running, ref: int = 1) -> str:
    return running.parent(ref)["text"]


def advance(running, days: int) -> None:
    running.clock.advance(timedelta(days=days))


# ---- the not-risky path: determination, certification, notice, waiting period ---------------------------


def test_not_risky_path_to_operational_use(running):
    assert "CR-1" in cmd(running, FILE)
    text = show(running)
    assert "Operational use is not permitted" in text
    for missing in ("determination", "certification", "notice to the APNSA"):
        assert missing in text, missing

    assert "Assigned" in cmd(running, f"assign CR-1 <@{REVIEWER}>", user=MANAGER)
    assert f"<@{REVIEWER}>" in last_line(running)
    answer_all(running, http=True)
    assert "answered 20 of 20" in parent_status(running)

    line = cmd(running, 'determine CR-1 not-risky reason="no red flags"', user=OFFICIAL)
    assert "Determination (§2(a))" in line and "not-risky" in line
    assert "not-risky" in last_line(running) and f"<@{OFFICIAL}>" in last_line(running)
    assert "determined" in parent_status(running)
    text = show(running)
    assert "certification by a relevant official" in text and "determination (§2(a))" not in text.lower()

    cmd(running, f"certify CR-1 {DHS}", user=OFFICIAL2)  # §2(f): not the official who determined
    assert "certified" in last_line(running) and "Secretary of Homeland Security" in last_line(running)
    assert "certified" in parent_status(running)
    assert "Secretary of Homeland Security on 2026-11-24" in show(running)

    cmd(running, "notify CR-1", user=MANAGER)
    assert "APNSA notified" in last_line(running) and "2026-12-01" in last_line(running)
    assert "waiting" in parent_status(running)
    text = show(running)
    assert "7 days left, ends 2026-12-01" in text
    assert "Earliest permitted operational use:* 2026-12-01" in text

    advance(running, 6)
    assert "1 day left, ends 2026-12-01" in show(running)
    advance(running, 1)
    text = show(running)
    assert "Operational use is permitted" in text and "cleared" in text

    # a stop-work blocks use whatever else holds; lifting it restores use
    cmd(running, 'stopwork CR-1 reason="verify EO 14093 compliance"', user=MANAGER)
    assert "Stop-work order" in last_line(running)
    assert "stop-work" in parent_status(running)
    text = show(running)
    assert "not permitted" in text and "stop-work order has been in effect since 2026-12-01" in text
    advance(running, 3)
    assert "in effect since 2026-12-01 (3 days)" in show(running)
    cmd(running, 'resume CR-1 reason="review done"', user=MANAGER)
    assert "lifted on 2026-12-04" in last_line(running) and "3 days" in last_line(running)
    assert "Operational use is permitted" in show(running)
    assert "cleared" in parent_status(running)

    cmd(running, 'close CR-1 reason="closed out"', user=MANAGER)
    assert "closed on 2026-12-04" in last_line(running)
    assert "closed" in parent_status(running)
    text = show(running)
    assert "Closed on 2026-12-04" in text and "not permitted" not in text


def test_backdating_shifts_every_clock_and_clearance_ends_the_wait(running):
    cmd(running, FILE)
    answer_all(running)
    cmd(running, 'determine CR-1 not-risky reason="ok" on=2026-11-01', user=OFFICIAL)
    cmd(running, f"certify CR-1 {DHS} on=2026-11-10", user=OFFICIAL2)
    cmd(running, "notify CR-1 on=2026-11-20", user=MANAGER)
    text = show(running)
    assert "3 days left, ends 2026-11-27" in text
    assert "not-risky on 2026-11-01" in text and "on 2026-11-10" in text
    assert "waiting" in parent_status(running)
    # the APNSA says no further process is needed: the wait ends that day
    advance(running, 1)
    cmd(running, "clear CR-1", user=MANAGER)
    assert "cleared CR-1 on 2026-11-25" in last_line(running)
    assert "cleared" in parent_status(running)
    text = show(running)
    assert "Operational use is permitted" in text and "cleared by the APNSA on 2026-11-25" in text
    # a backdated stop-work counts its days from its own date
    cmd(running, 'stopwork CR-1 reason="audit" on=2026-10-26', user=MANAGER)
    assert "since 2026-10-26 (30 days)" in show(running)


# ---- red flags, prohibition, waivers, re-determination ----------------------------------------------------


def test_red_flags_need_mitigation_answers_and_a_reason_naming_each(running):
    cmd(running, FILE)
    for q in QUESTIONS:
        if q.section == "MIT":
            break
        cmd(
            running,
            f"answer CR-1 {q.qid} {'yes' if q.section in ('SCOPE', 'PROC') or q.qid in ('CI-4', 'IU-1') else 'no'}",
            user=REVIEWER,
        )
    assert "2 red flags (CI-4, IU-1)" in parent_status(running)
    assert "MIT-1" in cmd(running, 'determine CR-1 not-risky reason="CI-4 and IU-1 handled"', user=OFFICIAL)
    for q in QUESTIONS:
        if q.section == "MIT":
            cmd(running, f"answer CR-1 {q.qid} yes", user=REVIEWER)
    refused = cmd(running, 'determine CR-1 not-risky reason="CI-4: US-owned since Dec 2024"', user=OFFICIAL)
    assert "missing: IU-1" in refused
    ok = cmd(
        running,
        'determine CR-1 not-risky reason="CI-4: US-owned now; IU-1: vendor cut off the misusers"',
        user=OFFICIAL,
    )
    assert "not-risky" in ok
    # answers are frozen once a determination is recorded
    assert "frozen" in cmd(running, "answer CR-1 CI-1 yes", user=REVIEWER)
    _out_of_scope(running)


def test_prohibited_waiver_revocation_and_redetermination(running):
    cmd(running, FILE)
    answer_all(running, flags=("IU-2",))
    cmd(running, 'determine CR-1 prohibited reason="IU-2 credible"', user=OFFICIAL)
    assert "prohibited" in parent_status(running)
    assert "only a waiver in force" in show(running)
    # at most one year
    assert "2027-11-24 at the latest" in cmd(
        running, f'waiver CR-1 {DHS} until=2027-11-25 reason="extraordinary"', user=OFFICIAL
    )
    line = cmd(
        running, f'waiver CR-1 {DHS} until=2027-11-24 reason="extraordinary; no alternative"', user=OFFICIAL
    )
    assert "Waiver (§2(m))" in line
    assert "in force through 2027-11-24" in last_line(running)
    assert "waiver" in parent_status(running)
    text = show(running)
    assert "Operational use is permitted* under a waiver in force through 2027-11-24" in text
    assert (
        "*Waiver (§2(m)):* by the Secretary of Homeland Security, issued 2026-11-24, in force through 2027-11-24"
        in text
    )
    assert "72-hour report due" in text and "2026-11-27" in text
    # a stop-work blocks use even under a waiver
    cmd(running, 'stopwork CR-1 reason="check"', user=MANAGER)
    assert "not permitted" in show(running)
    cmd(running, 'resume CR-1 reason="ok"', user=MANAGER)
    assert "Operational use is permitted" in show(running)

    cmd(running, "waiver-report CR-1", user=OFFICIAL)
    assert "72-hour waiver report" in last_line(running)
    assert "72-hour report due" not in show(running)
    advance(running, 10)
    cmd(running, 'revoke-waiver CR-1 reason="circumstances ended"', user=OFFICIAL)
    assert "revoked on 2026-12-04" in last_line(running)
    assert "prohibited" in parent_status(running)
    text = show(running)
    assert "not permitted" in text and "revoked on 2026-12-04" in text
    assert "72-hour report due" in text and "2026-12-07" in text
    cmd(running, "waiver-report CR-1", user=OFFICIAL)
    assert "revocation report" in last_line(running)

    # §2(j): a re-determination with a different outcome is allowed and audited as such
    assert "already determined `prohibited`" in cmd(
        running, 'determine CR-1 prohibited reason="again"', user=OFFICIAL
    )
    line = cmd(
        running,
        'determine CR-1 not-risky reason="IU-2: the misuse was by another product line"',
        user=OFFICIAL,
    )
    assert "Re-determination (§2(j))" in line
    redo = [e for e in audit_entries(running) if e.action == "re-determine"]
    assert len(redo) == 1 and "prohibited → not-risky" in redo[0].detail
    text = show(running)
    assert "certification by a relevant official" in text


def test_waiver_expires_and_waiver_refusals(running):
    cmd(running, FILE)  # `prohibited` may be recorded at any time
    cmd(running, 'determine CR-1 prohibited reason="x"', user=OFFICIAL)
    for text, expect in [
        (f'waiver CR-1 {DHS} until=2028-01-01 reason="x"', "at most one year"),
        (f'waiver CR-1 {DHS} until=2026-11-24 reason="x"', "after"),
        ('waiver CR-1 official="Mayor" until=2027-01-01 reason="x"', "not a relevant official"),
        (f"waiver CR-1 {DHS} until=2027-01-01", "reason"),
        (f'waiver CR-1 {DHS} reason="x"', "until"),
    ]:
        assert_refused(running, text, OFFICIAL, expect)
    cmd(running, f'waiver CR-1 {DHS} until=2026-12-24 reason="extraordinary"', user=OFFICIAL)
    assert_refused(running, f'waiver CR-1 {DHS} until=2027-02-01 reason="x"', OFFICIAL, "already in force")
    advance(running, 30)
    assert "permitted* under a waiver" in show(running)
    advance(running, 1)
    text = show(running)
    assert "not permitted" in text and "the waiver expired after 2026-12-24" in text
    assert "issued 2026-11-24, expired after 2026-12-24" in text
    assert_refused(running, 'revoke-waiver CR-1 reason="y"', OFFICIAL, "nothing to revoke")
    # a new waiver after an expired one; after a revocation, only once its report is recorded
    cmd(running, f'waiver CR-1 {DHS} until=2027-06-01 reason="again"', user=OFFICIAL)
    cmd(running, 'revoke-waiver CR-1 reason="y"', user=OFFICIAL)
    assert_refused(running, f'waiver CR-1 {DHS} until=2027-02-01 reason="x"', OFFICIAL, "waiver-report CR-1")


def _out_of_scope(running):  # CR-2
    cmd(running, f"{FILE} anyway=yes")  # the same contract again, on purpose
    assert "SCOPE-1 answered No" in cmd(
        running, 'determine CR-2 out-of-scope reason="not spyware"', user=OFFICIAL
    )
    cmd(running, "answer CR-2 SCOPE-1 no", user=REVIEWER)
    cmd(running, 'determine CR-2 out-of-scope reason="not spyware"', user=OFFICIAL)
    assert "out-of-scope" in parent_status(running, 2)
    assert "does not apply" in show(running, 2)
    assert "out of scope" in cmd(running, 'determine CR-2 prohibited reason="x"', user=OFFICIAL)


# ---- refusals: one ephemeral line, nothing written but the refusal's audit entry ----------------------------


def snapshot(running):
    """What a refusal must not change: the contract's view, pending reminders, Slack messages; and the audit."""
    running.deliver()
    with unit_of_work(running.bot.session_factory) as s:
        pending = [(r.key, r.status) for r in repo.list_pending_reminders(s)]
        audit = repo.list_audit(s)
    return (running.bot.service.show(1), pending, len(running.double.messages())), audit


def assert_refused(running, text: str, user: str, expect: str, *, audited: bool = True) -> None:
    """One ephemeral line naming the problem; one refused audit entry (none for garbage); nothing else changed."""
    before, audit_before = snapshot(running)
    r = running.command(text, user=user)
    assert r.status == 200 and r.json.get("response_type") == "ephemeral"
    assert not r.json.get("blocks"), r.json
    reply = r.json["text"]
    assert expect.lower() in reply.lower(), (text, reply)
    after, audit_after = snapshot(running)
    new = audit_after[len(audit_before) :]
    if audited:
        assert [(e.outcome, e.actor) for e in new] == [("refused", user)], (text, [e.action for e in new])
    else:
        assert new == [], text
    assert after[:2] == before[:2], text
    # a missing role is the one refusal told to the admins (privately)
    alerts = 1 if "* role" in expect else 0
    assert after[2] == before[2] + alerts, text
    if alerts:
        assert "tried" in running.double.messages(running.double.dm_channel(ADMIN))[-1]["text"]
    assert not any("tried" in m["text"] for m in running.double.messages(MANAGERS)), text


def test_refusals_in_a_fresh_review(running):
    cmd(running, FILE)
    for text, user, expect in [
        ('stopwork CR-1 reason="x"', MEMBER, "*manager* role"),
        ('stopwork CR-1 reason="x"', OFFICIAL, "*manager* role"),
        ('determine CR-1 not-risky reason="x"', ADMIN, "*official* role"),
        ('determine CR-1 not-risky reason="x"', MANAGER, "*official* role"),
        (f"certify CR-1 {DHS}", REVIEWER, "*official* role"),
        ("notify CR-1", OFFICIAL, "*manager* role"),
        (f"assign CR-1 <@{REVIEWER}>", OFFICIAL, "*manager* role"),
        ('close CR-1 reason="x"', ADMIN, "*manager* role"),
        (f"certify CR-1 {DHS}", OFFICIAL, "determine CR-1 not-risky"),
        ("notify CR-1", MANAGER, "certify CR-1"),
        ("clear CR-1", MANAGER, "notify"),
        ('resume CR-1 reason="x"', MANAGER, "stopwork CR-1"),
        (f'waiver CR-1 {DHS} until=2027-01-01 reason="x"', OFFICIAL, "prohibited"),
        ("waiver-report CR-1", OFFICIAL, "no waiver"),
        ('revoke-waiver CR-1 reason="x"', OFFICIAL, "nothing to revoke"),
        ('stopwork CR-1 reason="x" on=2024-09-01', MANAGER, "before the award"),
        # malformed: audited as a refused attempt, nothing else written
        ("stopwork CR-1", MANAGER, "reason"),
        ('stopwork CR-1 reason="x" on=2027-01-01', MANAGER, "future"),
        ('stopwork CR-1 reason="x" on=2026-02-30', MANAGER, "date"),
        ('certify CR-1 official="Secretary of Agriculture"', OFFICIAL, "not a relevant official"),
        ("determine CR-1 not-risky", OFFICIAL, "reason"),
        ("determine CR-1 maybe reason=x", OFFICIAL, "not-risky"),
        ("notify CR-1 on=2027-01-01", MANAGER, "future"),
        ("clear CR-1 on=yesterday", MANAGER, "date"),
        ("close CR-1", MANAGER, "reason"),
        ("revoke-waiver CR-1", OFFICIAL, "reason"),
        ("waiver-report CR-1 on=2026-11-31", OFFICIAL, "date"),
        ("assign CR-1", MANAGER, "@"),
        ("answer CR-1 SCOPE-9 yes", REVIEWER, "SCOPE-9"),
        ('resume CR-1 reason="x" color=red', MANAGER, "color"),
        # malformed and without the role: the missing role is the refusal
        ("determine CR-1 not-risky", MEMBER, "*official* role"),
    ]:
        assert_refused(running, text, user, expect)
    # refused input that carries a classification marking is audited without the text
    for text, user in [
        ('certify CR-1 official="SECRET//NOFORN memo 12"', OFFICIAL),
        ('stopwork CR-1 reason="TOP SECRET memo 12"', MANAGER),
    ]:
        assert_refused(running, text, user, "")
        detail = audit_entries(running)[-1].detail
        assert "memo 12" not in detail and "NOFORN" not in detail and "classification marking" in detail
    # garbage that attempts no action, and an unknown contract, write nothing
    assert_refused(running, "frobnicate CR-1", MANAGER, "subcommand", audited=False)
    assert_refused(
        running,
        'stopwork CR-99 reason="x"',
        MANAGER,
        "You may not see CR-99, or it does not exist",
        audited=False,
    )


@pytest.mark.long
def test_refusals_of_wrong_state_later_in_the_review(running):
    cmd(running, FILE)
    answer_all(running)
    cmd(running, 'determine CR-1 not-risky reason="ok" on=2026-11-01', user=OFFICIAL)
    cmd(running, 'stopwork CR-1 reason="check"', user=MANAGER)
    for text, user, expect in [
        ('determine CR-1 not-risky reason="again"', OFFICIAL, "already determined"),
        ("answer CR-1 CI-1 yes", REVIEWER, "frozen"),
        ('stopwork CR-1 reason="again"', MANAGER, "resume CR-1"),
        ('determine CR-1 prohibited reason="x" on=2026-10-01', OFFICIAL, "before the previous determination"),
        (f"certify CR-1 {DHS} on=2026-10-20", OFFICIAL2, "before the determination"),
        (f"certify CR-1 {DHS}", OFFICIAL, "the person who recorded the determination"),  # §2(f): two people
        (f'waiver CR-1 {DHS} until=2027-01-01 reason="x"', OFFICIAL, "not `prohibited`"),
        ('resume CR-1 reason="x" on=2026-11-20', MANAGER, "before the stop-work"),
    ]:
        assert_refused(running, text, user, expect)
    cmd(running, f"certify CR-1 {DHS} on=2026-11-05", user=OFFICIAL2)
    assert "notified" in cmd(running, "notify CR-1 on=2026-11-10", user=MANAGER)
    for text, user, expect in [
        ("notify CR-1", MANAGER, "already notified"),
        ("clear CR-1", MANAGER, "already ended"),
    ]:
        assert_refused(running, text, user, expect)
    cmd(running, 'close CR-1 reason="done"', user=MANAGER)
    for text, user in [
        ('resume CR-1 reason="x"', MANAGER),
        ('stopwork CR-1 reason="x"', MANAGER),
        ("clear CR-1", MANAGER),
        ('determine CR-1 prohibited reason="x"', OFFICIAL),
        (f"assign CR-1 <@{REVIEWER}>", MANAGER),
        ('close CR-1 reason="again"', MANAGER),
        ("answer CR-1 CI-1 no", REVIEWER),
    ]:
        assert_refused(running, text, user, "closed")
    assert "CR-1" in show(running) and "Audit timeline" in cmd(running, "audit CR-1")
    assert "1 contract" in cmd(running, "list")


def test_missing_role_alerts_admins_timeline_and_export(running):
    cmd(running, FILE)
    cmd(running, 'stopwork CR-1 reason="sneaky"', user=MEMBER)
    cmd(running, 'determine CR-1 prohibited reason="admin alone cannot decide"', user=ADMIN)
    running.deliver()
    # told to the admins privately, never in the managers' channel (people without a role may read it)
    assert not any("tried" in m["text"] for m in running.double.messages(MANAGERS))
    alerts = [m["text"] for m in running.double.messages(running.double.dm_channel(ADMIN))]
    assert any(f"<@{MEMBER}> tried `stopwork` on CR-1 without the *manager* role" in a for a in alerts), (
        alerts
    )
    assert any(f"<@{ADMIN}> tried `determine` on CR-1 without the *official* role" in a for a in alerts), (
        alerts
    )
    timeline = cmd(running, "audit CR-1")
    assert timeline.count(":no_entry_sign: refused") == 2
    assert "refused *stopwork*" in timeline and "refused *determine*" in timeline
    assert running.bot.service.show(1).state.determination is None

    # CR-2: the timeline has every action with actor and date, the refused one too
    cmd(running, f"{FILE} anyway=yes")  # the same contract again, on purpose
    cmd(running, "answer CR-2 SCOPE-1 yes", user=REVIEWER)
    cmd(running, 'stopwork CR-2 reason="check" on=2026-11-20', user=MANAGER)
    cmd(running, "notify CR-2", user=MANAGER)  # refused: not certified
    cmd(running, 'resume CR-2 reason="ok"', user=MANAGER)
    timeline = cmd(running, "audit CR-2")
    steps = [
        "*file*",
        "*answer*",
        "*stopwork* — on 2026-11-20",
        "refused *notify*",
        "*resume* — on 2026-11-24",
    ]
    at = [timeline.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), list(zip(steps, at, strict=True))
    assert f"<@{MANAGER}>" in timeline and f"<@{REVIEWER}>" in timeline

    # export: managers and admins only; the file arrives in the asker's DM
    cmd(running, 'determine CR-2 prohibited reason="IU-1"', user=OFFICIAL)
    cmd(running, 'file vendor="=cmd()" product=X agency=FBI', user=MEMBER)
    assert "*manager* or *admin* role" in cmd(running, "admin export", user=REVIEWER)
    running.deliver()
    admin_dm = running.double.messages(running.double.dm_channel(ADMIN))
    assert any("tried `admin export`" in m["text"] for m in admin_dm)
    assert running.double.files() == []
    for n, fmt in enumerate(("csv", "json"), start=1):
        reply = cmd(running, "admin export" if fmt == "csv" else "admin export json", user=ADMIN)
        assert fmt.upper() in reply
        running.double.wait_for(lambda d, n=n: len(d.files()) == n)
        f = running.double.files()[-1]
        assert f["channel_id"] == running.double.dm_channel(ADMIN)
        assert f["name"].endswith("." + fmt)
        content = f["content"].decode("utf-8-sig")  # a CSV starts with a BOM (for Excel)
        if fmt == "json":
            # JSON nests each answer; compare as CSV columns
            rows = [flatten(r) for r in json.loads(content)["contracts"]]
        else:
            _, rows = csv_rows(content)
            assert rows[2]["vendor"] == "'=cmd()"  # no spreadsheet formula
        assert [r["reference"] for r in rows] == ["CR-1", "CR-2", "CR-3"]
        assert rows[1]["determination"] == "prohibited" and rows[1]["answer_SCOPE-1"] == "yes"
        assert rows[1]["determination_reason"] == "IU-1" and rows[1]["answer_CI-1"] in (None, "")
        assert rows[0]["determination"] in (None, "") and rows[2]["red_flags"] in ("", [])
    assert len(running.double.files()) == 2
