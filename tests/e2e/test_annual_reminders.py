"""The §4 reminders of the order's paperwork over real HTTP and the Slack double: the §4(d) annual report, 30 and 7
days before `annual_report_due` (an admin setting, MM-DD); and the §4(b) notice of an
excluded-purpose purchase is reminded until it is recorded as sent, then never again, nor shown overdue."""

from __future__ import annotations

from storage import repositories as repo
from storage.db import unit_of_work
from tests.conftest import MANAGER
from tests.e2e.test_home import open_home, texts
from tests.e2e.test_reminders import manager_reminders, ny, ok, sweep, thread_reminders

EXCLUDED = "file vendor=Acme product=Probe agency=FBI purpose=excluded awarded=2026-10-01"


def _notices(texts_: list[str], ref: int) -> list[str]:
    return [t for t in texts_ if f"§4(b) notice to the APNSA for *CR-{ref}*" in t]


def _digest_text(running) -> str:
    return [t for t in manager_reminders(running) if "weekly digest" in t][-1]


def _record_sent(running, ref: int) -> None:
    """What `sent CR-n excluded` writes: the notice row, and the end of its reminders (one unit of work)."""
    from bot.services.reviews import record_excluded_notice_sent

    with unit_of_work(running.bot.session_factory) as s:
        c = repo.get_contract(s, ref)
        repo.add_notice(
            s,
            contract_id=ref,
            kind="excluded",
            event="sent",
            actor=MANAGER,
            at=running.clock.now(),
            sha256="ab" * 32,
        )
        record_excluded_notice_sent(s, c)


def test_the_excluded_notice_is_no_longer_reminded_nor_overdue_once_sent(running):
    ok(running.command(EXCLUDED))  # awarded 2026-10-01: the notice was due 2026-11-15, so it is overdue
    ok(running.command(EXCLUDED.replace("Acme", "Bcme") + " anyway=yes"))
    sweep(running, ny(2026, 11, 30, 8))  # the catch-up reminders (and the digest planned)
    sweep(running, ny(2026, 11, 30, 9, 1))  # a Monday: the digest
    assert len(_notices(manager_reminders(running), 1)) == 1
    assert "CR-1 §4(b) notice due (due 2026-11-15)" in _digest_text(running)
    view = open_home(running, MANAGER)
    home = "\n".join(texts(view))
    assert "CR-1 §4(b) notice due (overdue)" in home and "CR-2 §4(b) notice due (overdue)" in home

    _record_sent(running, 1)
    with unit_of_work(running.bot.session_factory) as s:
        assert "excluded-notice" not in [r.kind for r in repo.list_pending_reminders(s, contract_id=1)]
    sweep(running, ny(2026, 12, 7, 9, 1))  # the next Monday
    digest = _digest_text(running)
    assert "CR-1 §4(b)" not in digest and "CR-2 §4(b) notice due (due 2026-11-15)" in digest
    home = "\n".join(texts(open_home(running, MANAGER, view)))
    assert "CR-1 §4(b)" not in home and "CR-2 §4(b) notice due (overdue)" in home
    assert len(_notices(manager_reminders(running), 1)) == 1
    assert len(_notices(thread_reminders(running, 1), 1)) == 1


def test_a_queued_excluded_reminder_sends_nothing_once_the_notice_row_exists(running):
    """The sweeper checks the notice row itself: a reminder not cancelled (a row written by another path) says
    nothing."""
    ok(
        running.command(EXCLUDED.replace("2026-10-01", "2026-11-24"))
    )  # due 2027-01-08; reminded from 2026-12-24
    with unit_of_work(running.bot.session_factory) as s:
        repo.add_notice(
            s, contract_id=1, kind="excluded", event="sent", actor=MANAGER, at=running.clock.now()
        )
    sweep(running, ny(2027, 1, 9, 9))
    assert [t for t in manager_reminders(running) if "§4(b)" in t] == []
    assert [t for t in thread_reminders(running, 1) if "§4(b)" in t] == []


# ---- §4(d): the annual report ------------------------------------------------------------------------------


def _annual(running) -> list[str]:
    return [t for t in manager_reminders(running) if "§4(d) annual report" in t]


def test_managers_are_reminded_30_and_7_days_before_the_annual_report_is_due(running):
    sweep(running, ny(2026, 11, 24, 10))  # plans the reminders of the report due 27 Mar 2027
    sweep(running, ny(2027, 2, 25, 8, 59))
    assert _annual(running) == []
    sweep(running, ny(2027, 2, 25, 9))
    sent = _annual(running)
    assert len(sent) == 1
    assert sent[0].startswith(
        ":bar_chart: Reminder: the §4(d) annual report is due on 27 Mar 2027 (30 days): `/contract report annual`"
    )
    assert "reporting year 28 Mar 2026 to 27 Mar 2027" in sent[0] and "Next:" in sent[0]
    sweep(running, ny(2027, 3, 20, 9))  # a Saturday: the report's clock is calendar days
    assert len(_annual(running)) == 2 and "(7 days)" in _annual(running)[1]
    sweep(running, ny(2027, 3, 28, 9))  # past the due day: next year's are planned, nothing sent
    assert len(_annual(running)) == 2
    with unit_of_work(running.bot.session_factory) as s:
        keys = sorted(r.key for r in repo.list_pending_reminders(s) if r.kind == "annual-report")
    assert keys == ["annual-report:2028-03-27:30d", "annual-report:2028-03-27:7d"]


def test_annual_report_due_is_an_admin_setting_and_its_reminders_follow_it(running):
    sweep(running, ny(2026, 11, 24, 10))  # planned for 27 Mar 2027
    for bad in ("02-29", "13-01", "March-27", "03/27"):
        r = running.command(f"admin set annual_report_due {bad}", user="UADMIN1")
        assert r.json["response_type"] == "ephemeral" and "MM-DD" in r.json["text"], r.json
    assert "annual_report_due" in running.command("admin settings", user="UADMIN1").json["text"]
    ok(running.command("admin set annual_report_due 1-31", user="UADMIN1"))
    assert "`01-31`" in running.command("admin settings", user="UADMIN1").json["text"]
    sweep(running, ny(2027, 1, 1, 9))  # 30 days before 31 Jan 2027
    sent = _annual(running)
    assert len(sent) == 1 and "due on 31 Jan 2027 (30 days)" in sent[0]
    sweep(running, ny(2027, 1, 24, 9))
    assert len(_annual(running)) == 2 and "due on 31 Jan 2027 (7 days)" in _annual(running)[1]
    sweep(running, ny(2027, 2, 25, 9))  # the reminders planned for 27 Mar say nothing now
    sweep(running, ny(2027, 3, 20, 9))
    assert len(_annual(running)) == 2
