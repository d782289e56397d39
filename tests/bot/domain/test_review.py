"""The EO 14093 review rules, table-driven over (state, action, role): who may act, what each state allows,
and what `show` says is still missing before operational use."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.domain import questions as qs
from bot.domain import review as rv
from bot.domain import roles
from bot.domain.args import COMMANDS
from bot.domain.errors import InvalidState, PermissionDenied

D = date(2025, 8, 1)  # the day states below were reached
TODAY = date(2025, 9, 1)

CLEAN = {q.qid: ("yes" if q.section in ("SCOPE", "PROC", "MIT") else "no") for q in qs.QUESTIONS}
FLAGGED = {**CLEAN, "CI-4": "yes", "IU-1": "yes"}
FLAGGED_OPEN_MIT = {k: v for k, v in FLAGGED.items() if not k.startswith("MIT")} | {"MIT-2": "unknown"}


def st(answers=CLEAN, **kw) -> rv.ReviewState:  # noqa: ANN001
    return rv.ReviewState(ref="CR-7", awarded_on=date(2024, 9, 27), answers=answers, **kw)


STATES: dict[str, rv.ReviewState] = {
    "fresh": st({}),
    "answered": st(),
    "unknown-ci": st({**CLEAN, "CI-2": "unknown"}),
    "unanswered-iu": st({k: v for k, v in CLEAN.items() if k != "IU-3"}),
    "flagged": st(FLAGGED),
    "flagged-open-mit": st(FLAGGED_OPEN_MIT),
    "scope-no": st({"SCOPE-1": "no"}),
    "out-of-scope": st({"SCOPE-1": "no"}, determination=rv.OUT_OF_SCOPE, determined_on=D),
    "determined": st(determination=rv.NOT_RISKY, determined_on=D),
    "certified": st(
        determination=rv.NOT_RISKY, determined_on=D, certified_on=D, certified_by="Attorney General"
    ),
    "notified": st(
        determination=rv.NOT_RISKY,
        determined_on=D,
        certified_on=D,
        certified_by="Attorney General",
        notice_on=TODAY - timedelta(days=2),
    ),
    "wait-over": st(
        determination=rv.NOT_RISKY,
        determined_on=D,
        certified_on=D,
        certified_by="Attorney General",
        notice_on=D,
    ),
    "cleared": st(
        determination=rv.NOT_RISKY,
        determined_on=D,
        certified_on=D,
        certified_by="Attorney General",
        notice_on=TODAY - timedelta(days=2),
        cleared_on=TODAY - timedelta(days=1),
    ),
    "prohibited": st(FLAGGED, determination=rv.PROHIBITED, determined_on=D),
    "waived": st(
        FLAGGED,
        determination=rv.PROHIBITED,
        determined_on=D,
        waiver_issued_on=D,
        waiver_until=date(2026, 8, 1),
    ),
    "waived-reported": st(
        FLAGGED,
        determination=rv.PROHIBITED,
        determined_on=D,
        waiver_issued_on=D,
        waiver_until=date(2026, 8, 1),
        waiver_reported=True,
    ),
    "revoked": st(
        FLAGGED,
        determination=rv.PROHIBITED,
        determined_on=D,
        waiver_issued_on=D,
        waiver_until=date(2026, 8, 1),
        waiver_reported=True,
        waiver_revoked_on=TODAY - timedelta(days=1),
    ),
    "waiver-expired": st(
        FLAGGED,
        determination=rv.PROHIBITED,
        determined_on=D,
        waiver_issued_on=D,
        waiver_until=D + timedelta(days=10),
        waiver_reported=True,
    ),
    "stop-work": st(stopwork_since=date(2024, 10, 8)),
    "stopped-cleared": st(
        determination=rv.NOT_RISKY,
        determined_on=D,
        certified_on=D,
        certified_by="AG",
        notice_on=D,
        stopwork_since=date(2024, 10, 8),
    ),
    "stopped-waived": st(
        FLAGGED,
        determination=rv.PROHIBITED,
        determined_on=D,
        waiver_issued_on=D,
        waiver_until=date(2026, 8, 1),
        stopwork_since=D,
    ),
    "closed": st(determination=rv.NOT_RISKY, determined_on=D, closed_on=D),
}

OK = "ok"


def attempt(
    state: rv.ReviewState,
    action: str,
    *,
    on: date = TODAY,
    reason: str = "because",
    until: date | None = None,
) -> str:
    """Run the state check of an action; "ok" or the refusal's message."""
    name, _, arg = action.partition(" ")
    try:
        match name:
            case "determine":
                rv.check_determination(state, arg, reason, on)
            case "certify":
                rv.check_certify(state, on)
            case "notify":
                rv.check_notify(state, on)
            case "clear":
                rv.check_clear(state, on)
            case "stopwork":
                rv.check_stopwork(state, on)
            case "resume":
                rv.check_resume(state, on)
            case "waiver":
                rv.check_waiver(state, on, until or on + timedelta(days=90))
            case "waiver-report":
                rv.check_waiver_report(state, on)
            case "revoke-waiver":
                rv.check_revoke_waiver(state, on)
            case "close":
                rv.check_close(state, on)
            case "answer":
                rv.check_answer(state)
            case "assign":
                rv.check_open(state, "assign")
            case _:
                raise AssertionError(action)
    except InvalidState as exc:
        return exc.message
    return OK


# ---- (state, action) -> allowed, or the reason it is refused ------------------------------------------------

STATE_TABLE = [
    # determination preconditions
    ("fresh", "determine not-risky", "unanswered: CI-1"),
    ("answered", "determine not-risky", OK),
    ("unknown-ci", "determine not-risky", "answered Unknown: CI-2"),
    ("unanswered-iu", "determine not-risky", "unanswered: IU-3"),
    ("flagged-open-mit", "determine not-risky", "mitigation questions answered"),
    ("flagged", "determine not-risky", "missing: CI-4, IU-1"),
    ("fresh", "determine prohibited", OK),
    ("answered", "determine out-of-scope", "needs SCOPE-1 answered No"),
    ("scope-no", "determine out-of-scope", OK),
    ("determined", "determine not-risky", "already determined"),
    ("prohibited", "determine prohibited", "already determined"),
    ("prohibited", "determine not-risky", "missing: CI-4, IU-1"),  # §2(j): allowed, but on the same rules
    ("determined", "determine prohibited", OK),
    ("out-of-scope", "determine prohibited", "out of scope"),
    ("closed", "determine prohibited", "closed"),
    # answers freeze once a determination is recorded
    ("answered", "answer", OK),
    ("determined", "answer", "frozen"),
    ("prohibited", "answer", "frozen"),
    ("closed", "answer", "closed"),
    # certification only after not-risky, once
    ("answered", "certify", "not determined yet"),
    ("prohibited", "certify", "`prohibited`"),
    ("determined", "certify", OK),
    ("certified", "certify", "already certified"),
    # notice only after certification, once
    ("determined", "notify", "not certified yet"),
    ("answered", "notify", "not certified yet"),
    ("certified", "notify", OK),
    ("notified", "notify", "already notified"),
    # clearance ends a running waiting period
    ("certified", "clear", "`notify` first"),
    ("notified", "clear", OK),
    ("cleared", "clear", "already cleared"),
    ("wait-over", "clear", "already ended"),
    # stop-work
    ("answered", "stopwork", OK),
    ("stop-work", "stopwork", "`resume CR-7"),
    ("answered", "resume", "nothing to resume"),
    ("stop-work", "resume", OK),
    # waivers of a prohibition
    ("answered", "waiver", "not `prohibited`"),
    ("determined", "waiver", "not `prohibited`"),
    ("prohibited", "waiver", OK),
    ("waived", "waiver", "already in force"),
    ("waiver-expired", "waiver", OK),
    ("revoked", "waiver", "still outstanding; record it with `waiver-report CR-7`"),
    ("prohibited", "revoke-waiver", "nothing to revoke"),
    ("waived", "revoke-waiver", OK),
    ("revoked", "revoke-waiver", "nothing to revoke"),
    ("waiver-expired", "revoke-waiver", "nothing to revoke"),
    ("prohibited", "waiver-report", "No waiver or revocation report is outstanding"),
    ("waived", "waiver-report", OK),
    ("waived-reported", "waiver-report", "No waiver or revocation report is outstanding"),
    ("revoked", "waiver-report", OK),
    # closed contracts accept nothing but show, list and audit
    ("answered", "close", OK),
    *[
        ("closed", a, "accepts only `show`, `list` and `audit`")
        for a in (
            "certify",
            "notify",
            "clear",
            "stopwork",
            "resume",
            "waiver",
            "waiver-report",
            "revoke-waiver",
            "close",
            "assign",
        )
    ],
]


@pytest.mark.parametrize(
    ("state", "action", "expected"), STATE_TABLE, ids=[f"{s}-{a}" for s, a, _ in STATE_TABLE]
)
def test_state_allows_or_refuses(state, action, expected):
    result = attempt(STATES[state], action)
    if expected == OK:
        assert result == OK
    else:
        assert result != OK and expected in result, result


def test_a_red_flag_reason_must_name_each_flag_as_a_word():
    flagged = STATES["flagged"]
    assert attempt(flagged, "determine not-risky", reason="ci-4: US-owned; IU-1: cut off") == OK
    assert "missing: IU-1" in attempt(flagged, "determine not-risky", reason="CI-4 handled; IU-12 n/a")
    assert "missing: CI-4" in attempt(flagged, "determine not-risky", reason="XCI-4 IU-1")
    assert "missing: CI-4, IU-1" in attempt(flagged, "determine not-risky", reason="")


# ---- dates: backdating is bounded by the steps before it --------------------------------------------------

DATE_TABLE = [
    ("determined", "certify", D - timedelta(days=1), "before the determination"),
    ("determined", "certify", D, OK),
    ("certified", "notify", D - timedelta(days=1), "before the certification"),
    ("notified", "clear", TODAY - timedelta(days=3), "before the APNSA notice"),
    ("stop-work", "resume", date(2024, 10, 7), "before the stop-work order"),
    ("stop-work", "resume", date(2025, 8, 29), OK),
    ("answered", "stopwork", date(2024, 9, 26), "before the award"),
    ("answered", "close", date(2024, 9, 1), "before the award"),
    ("determined", "determine prohibited", D - timedelta(days=1), "before the previous determination"),
    ("prohibited", "waiver", D - timedelta(days=1), "before the prohibition"),
    ("waived", "revoke-waiver", D - timedelta(days=1), "nothing to revoke"),
    ("revoked", "waiver-report", TODAY - timedelta(days=2), "before the revocation"),
]


@pytest.mark.parametrize(("state", "action", "on", "expected"), DATE_TABLE)
def test_dated_actions_keep_their_order(state, action, on, expected):
    result = attempt(STATES[state], action, on=on)
    assert result == OK if expected == OK else expected in result, result


def test_future_dates_are_refused_and_past_ones_accepted():
    rv.check_on_date(TODAY, TODAY)
    rv.check_on_date(date(2024, 10, 8), TODAY)
    with pytest.raises(InvalidState, match="future"):
        rv.check_on_date(TODAY + timedelta(days=1), TODAY)


@pytest.mark.parametrize(
    ("issued", "latest"), [(date(2025, 8, 1), date(2026, 8, 1)), (date(2024, 2, 29), date(2025, 2, 28))]
)
def test_a_waiver_lasts_at_most_one_year(issued, latest):
    prohibited = STATES["prohibited"].with_(determined_on=issued)
    assert attempt(prohibited, "waiver", on=issued, until=latest) == OK
    assert "at most one year" in attempt(prohibited, "waiver", on=issued, until=latest + timedelta(days=1))
    assert "must be after" in attempt(prohibited, "waiver", on=issued, until=issued)


# ---- roles: who may do what; admin alone never decides -----------------------------------------------------

ROLE_OF = {
    "assign": roles.MANAGER,
    "stopwork": roles.MANAGER,
    "resume": roles.MANAGER,
    "notify": roles.MANAGER,
    "clear": roles.MANAGER,
    "close": roles.MANAGER,
    "reopen": roles.MANAGER,
    "determine": roles.OFFICIAL,
    "redetermine": roles.OFFICIAL,
    "certify": roles.OFFICIAL,
    "waiver": roles.OFFICIAL,
    "waiver-report": roles.OFFICIAL,
    "revoke-waiver": roles.OFFICIAL,
    "answer": roles.REVIEWER,
    "show": roles.ANYONE,
    "list": roles.ANYONE,
    "audit": roles.ANYONE,
    "file": roles.ANYONE,
}
HOLDERS = {
    "member": set(),
    "reviewer": {roles.REVIEWER},
    "manager": {roles.MANAGER},
    "official": {roles.OFFICIAL},
    "admin": {roles.ADMIN},
    "admin+manager": {roles.ADMIN, roles.MANAGER},
}
ROLE_TABLE = [(action, holder) for action in ROLE_OF for holder in HOLDERS]


@pytest.mark.parametrize(("action", "holder"), ROLE_TABLE)
def test_role_table(action, holder):
    needed = ROLE_OF[action]
    assert COMMANDS[action].role == needed  # the parser's table agrees with the SPEC's
    held = HOLDERS[holder]
    allowed = needed == roles.ANYONE or needed in held
    if allowed:
        roles.require_role(held, needed, action)
    else:
        with pytest.raises(PermissionDenied) as exc:
            roles.require_role(held, needed, action)
        assert exc.value.role == needed and f"*{needed}*" in exc.value.message


def test_admin_alone_cannot_decide():
    for action in (
        "determine",
        "certify",
        "waiver",
        "revoke-waiver",
        "stopwork",
        "resume",
        "notify",
        "clear",
    ):
        assert not roles.has_role({roles.ADMIN}, ROLE_OF[action]), action


# ---- operational use: every condition, and exactly what is missing ---------------------------------------

USE_TABLE = [
    ("fresh", False, ["a `not-risky` determination", "certification", "notice to the APNSA"]),
    ("determined", False, ["certification", "notice to the APNSA"]),
    ("certified", False, ["notice to the APNSA"]),
    ("notified", False, ["5 days left, ends 2025-09-06"]),
    ("wait-over", True, []),
    ("cleared", True, []),
    ("prohibited", False, ["only a waiver in force"]),
    ("waived", True, []),
    ("revoked", False, ["revoked on 2025-08-31"]),
    ("waiver-expired", False, ["the waiver expired after 2025-08-11"]),
    ("stop-work", False, ["since 2024-10-08 (328 days", "a `not-risky` determination"]),
    ("stopped-cleared", False, ["since 2024-10-08"]),
    ("stopped-waived", False, ["since 2025-08-01"]),
    ("out-of-scope", False, ["does not apply"]),
    ("closed", False, ["closed on 2025-08-01"]),
]


@pytest.mark.parametrize(("state", "permitted", "missing"), USE_TABLE, ids=[s for s, _, _ in USE_TABLE])
def test_operational_use(state, permitted, missing):
    verdict = rv.operational_use(STATES[state], TODAY)
    assert verdict.permitted is permitted, verdict.missing
    text = " | ".join(verdict.missing)
    for part in missing:
        assert part in text, text
    if permitted:
        assert verdict.missing == ()
    if state in ("stopped-cleared", "stopped-waived"):
        assert len(verdict.missing) == 1  # the stop-work order is the only thing missing


def test_waiting_period_clock():
    notified = STATES["certified"].with_(notice_on=date(2025, 8, 14))
    assert rv.waiting_period_end(notified) == date(2025, 8, 21)
    assert not rv.operational_use(notified, date(2025, 8, 20)).permitted
    assert "1 day left, ends 2025-08-21" in rv.operational_use(notified, date(2025, 8, 20)).missing[0]
    assert rv.operational_use(notified, date(2025, 8, 21)).permitted
    assert rv.operational_use(notified, date(2025, 8, 18)).earliest_on == date(2025, 8, 21)
    cleared = notified.with_(cleared_on=date(2025, 8, 16))
    assert rv.waiting_period_end(cleared) == date(2025, 8, 16)
    assert rv.operational_use(cleared, date(2025, 8, 16)).permitted


def test_waiver_in_force_through_its_last_day_and_only_for_a_prohibition():
    waived = STATES["waived"]
    assert rv.operational_use(waived, date(2026, 8, 1)).via_waiver
    assert not rv.operational_use(waived, date(2026, 8, 2)).permitted
    # a re-determination to not-risky voids the waiver's effect: the not-risky path applies
    redetermined = rv.apply_determination(waived, rv.NOT_RISKY, TODAY)
    verdict = rv.operational_use(redetermined, TODAY)
    assert not verdict.permitted and "certification" in " ".join(verdict.missing)


def test_a_waiver_does_not_survive_a_later_determination():
    waived = STATES["waived"]
    again = rv.apply_determination(
        rv.apply_determination(waived, rv.NOT_RISKY, D + timedelta(days=5)),
        rv.PROHIBITED,
        D + timedelta(days=9),
    )
    verdict = rv.operational_use(again, TODAY)
    assert not verdict.permitted and "predates the current determination" in verdict.missing[0]
    assert rv.status(again, TODAY) == "prohibited"
    assert attempt(again, "waiver", on=TODAY) == OK  # a new waiver for the new prohibition


def test_redetermination_voids_certification_and_notice():
    after = rv.apply_determination(STATES["cleared"], rv.PROHIBITED, TODAY)
    assert (after.certified_on, after.notice_on, after.cleared_on) == (None, None, None)
    assert after.determination == rv.PROHIBITED and after.determined_on == TODAY


def test_72_hour_reports_follow_issue_then_revocation():
    assert rv.pending_waiver_report(STATES["prohibited"]) is None
    assert rv.pending_waiver_report(STATES["waived"]) == "waiver"
    assert rv.pending_waiver_report(STATES["waived-reported"]) is None
    assert rv.pending_waiver_report(STATES["revoked"]) == "revocation"
    assert rv.check_waiver_report(STATES["revoked"], TODAY) == "revocation"
    assert rv.pending_waiver_report(STATES["revoked"].with_(revocation_reported=True)) is None


STATUS_TABLE = [
    ("fresh", "intake"),
    ("answered", "in-review"),
    ("determined", "determined"),
    ("certified", "certified"),
    ("notified", "waiting"),
    ("wait-over", "cleared"),
    ("cleared", "cleared"),
    ("prohibited", "prohibited"),
    ("waived", "waiver"),
    ("revoked", "prohibited"),
    ("waiver-expired", "prohibited"),
    ("stop-work", "stop-work"),
    ("stopped-cleared", "stop-work"),
    ("out-of-scope", "out-of-scope"),
    ("closed", "closed"),
]


@pytest.mark.parametrize(("state", "expected"), STATUS_TABLE)
def test_status(state, expected):
    assert rv.status(STATES[state], TODAY) == expected
    assert expected in rv.STATUSES


# ---- §2(j) re-determination: answers reopen until the next determination ---------------------------------

R = D + timedelta(days=10)  # the day new information came in
REDETERMINING = {
    "redetermining": STATES["determined"].with_(redetermination_on=R),
    "redetermining-prohibited": STATES["prohibited"].with_(redetermination_on=R),
    "redetermining-out-of-scope": STATES["out-of-scope"].with_(redetermination_on=R),
    "redetermining-cleared": STATES["cleared"].with_(redetermination_on=R),
}
REDETERMINE_TABLE = [
    ("answered", "redetermine", "no determination to revisit"),
    ("determined", "redetermine", OK),
    ("out-of-scope", "redetermine", OK),
    ("cleared", "redetermine", OK),
    ("redetermining", "redetermine", "under way since 2025-08-11"),
    ("closed", "redetermine", "closed"),
    ("redetermining", "answer", OK),
    ("redetermining-prohibited", "answer", OK),
    ("redetermining", "determine not-risky", OK),  # the same outcome again, on the new information
    ("redetermining-prohibited", "determine prohibited", OK),
    ("redetermining-out-of-scope", "determine prohibited", OK),
    ("out-of-scope", "determine prohibited", "`redetermine CR-7"),
    ("determined", "answer", "`/contract redetermine CR-7"),
]


def attempt_more(state: rv.ReviewState, action: str, *, on: date = TODAY) -> str:
    """Like ``attempt``, with the actions this section adds."""
    try:
        if action == "redetermine":
            rv.check_redetermine(state, on)
        elif action == "reopen":
            rv.check_reopen(state)
        else:
            return attempt(state, action, on=on)
    except InvalidState as exc:
        return exc.message
    return OK


@pytest.mark.parametrize(("state", "action", "expected"), REDETERMINE_TABLE)
def test_redetermination_reopens_the_answers(state, action, expected):
    result = attempt_more({**STATES, **REDETERMINING}[state], action)
    assert result == OK if expected == OK else expected in result, result


def test_the_next_determination_freezes_the_answers_and_voids_certification_and_notice():
    state = REDETERMINING["redetermining-cleared"]
    assert rv.answers_open(state)
    after = rv.apply_determination(state, rv.NOT_RISKY, TODAY)
    assert after.redetermination_on is None and not rv.answers_open(after)
    assert (after.certified_on, after.notice_on, after.cleared_on) == (None, None, None)
    assert "frozen" in attempt(after, "answer")
    # the determination in force still counts while the new one is prepared (a stop-work stops use)
    assert rv.operational_use(state, TODAY).permitted
    assert not rv.answers_open(STATES["closed"]) and rv.answers_open(STATES["answered"])


# ---- dates: every dated action against the event it depends on ---------------------------------------------

LIFTED = st(stopwork_lifted_on=date(2025, 3, 1))
MILESTONES = st(
    FLAGGED,
    stopwork_since=date(2024, 10, 8),
    determination=rv.PROHIBITED,
    determined_on=D,
    waiver_issued_on=D + timedelta(days=2),
    waiver_until=date(2026, 8, 1),
    waiver_reported=True,
    waiver_reported_on=D + timedelta(days=3),
)
MORE_DATES = [
    # a stop-work inside (or before) an earlier one that had ended
    (LIFTED, "stopwork", date(2025, 2, 1), "inside (or before) the previous stop-work order"),
    (LIFTED, "stopwork", date(2024, 10, 1), "lifted on 2025-03-01"),
    (LIFTED, "stopwork", date(2025, 3, 1), OK),
    # a close before the last milestone, whichever it is
    (MILESTONES, "close", D + timedelta(days=2), "before the waiver's 72-hour report (2025-08-04)"),
    (MILESTONES, "close", D + timedelta(days=3), OK),
    (STATES["stop-work"], "close", date(2024, 10, 7), "before the stop-work order (2024-10-08)"),
    (STATES["determined"], "close", D - timedelta(days=1), "before the determination (2025-08-01)"),
    (STATES["cleared"], "close", TODAY - timedelta(days=2), "before the APNSA clearance"),
    (LIFTED, "close", date(2025, 2, 28), "before the lifting of the stop-work order"),
    (STATES["revoked"], "close", TODAY - timedelta(days=2), "before the revocation of the waiver"),
    (REDETERMINING["redetermining"], "close", R - timedelta(days=1), "before the re-determination"),
    # re-determination and the determination after it
    (STATES["determined"], "redetermine", D - timedelta(days=1), "before the determination it revisits"),
    (REDETERMINING["redetermining"], "determine prohibited", R - timedelta(days=1), "re-determination"),
    (REDETERMINING["redetermining"], "determine prohibited", R, OK),
    # a new waiver is not dated before the one it follows
    (
        STATES["waiver-expired"].with_(waiver_issued_on=D + timedelta(days=5)),
        "waiver",
        D + timedelta(days=3),
        "before the previous waiver (2025-08-06)",
    ),
    # allowed: a determination before the award, or before any answer was entered
    (st({}).with_(awarded_on=TODAY), "determine prohibited", D, OK),
    (st({}), "determine prohibited", date(2020, 1, 1), OK),
]


@pytest.mark.parametrize(("state", "action", "on", "expected"), MORE_DATES)
def test_every_dated_action_follows_what_it_depends_on(state, action, on, expected):
    result = attempt_more(state, action, on=on)
    assert result == OK if expected == OK else expected in result, result


def test_last_milestone_names_the_latest_event():
    assert rv.last_milestone(st({}).with_(awarded_on=None)) is None
    assert rv.last_milestone(MILESTONES) == ("the waiver's 72-hour report", D + timedelta(days=3))


# ---- reopen: a close made by mistake -------------------------------------------------------------------------


def test_only_a_closed_contract_reopens():
    assert attempt_more(STATES["closed"], "reopen") == OK
    assert "not closed" in attempt_more(STATES["answered"], "reopen")


# ---- out of scope and closed are shown as such --------------------------------------------------------------

SUMMARY_TABLE = [
    ("fresh", "not permitted", "Still missing"),
    ("wait-over", "permitted", "is permitted"),
    ("waived", "permitted (waiver)", "is permitted"),
    ("out-of-scope", "the order does not apply (out of scope)", "The order does not apply (out of scope)"),
    ("closed", "closed on 2025-08-01", "Closed on 2025-08-01"),
]


@pytest.mark.parametrize(("state", "summary", "headline"), SUMMARY_TABLE)
def test_verdict_summary_and_headline(state, summary, headline):
    verdict = rv.operational_use(STATES[state], TODAY)
    assert verdict.summary == summary
    assert headline in verdict.headline
    if state in ("out-of-scope", "closed"):
        assert "not permitted" not in verdict.headline and "Still missing" not in verdict.headline


def test_a_closed_contract_lists_nothing_missing_but_its_close():
    closed = STATES["stop-work"].with_(closed_on=TODAY)
    assert rv.operational_use(closed, TODAY).missing == ("the contract was closed on 2025-09-01",)


# ---- look-alike filings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("Paragon Solutions", "Graphite", "ICE"), ("paragon  solutions,", "GRAPHITE", " ice "), True),
        (
            ("Paragon Solutions, Inc.", "Graphite", "ICE"),
            ("Paragon Solutions Inc", "Graphite", "I.C.E."),
            False,
        ),
        (("Paragon Solutions, Inc.", "Graphite", "ICE"), ("Paragon-Solutions Inc", "graphite", "ice"), True),
        (("ＮＳＯ Group", "Pegasus", "FBI"), ("NSO group", "pegasus", "fbi"), True),  # full-width letters
        (("Paragon", "Graphite", "ICE"), ("Paragon", "Graphite", "CBP"), False),
        (("Paragon", "Graphite", "ICE"), ("Paragon", "Graphite 2", "ICE"), False),
    ],
)
def test_filing_key_ignores_case_punctuation_and_spacing(a, b, same):
    assert (rv.filing_key(*a) == rv.filing_key(*b)) is same


def test_a_duplicate_filing_names_the_contract_and_how_to_file_anyway():
    exc = rv.DuplicateFiling(rv.LookAlike("CR-2", "U1", D), how_to_confirm="add `anyway=yes`.")
    assert exc.message.startswith("This looks like *CR-2* (filed 2025-08-01 by <@U1>)")
    assert exc.message.endswith("add `anyway=yes`.") and exc.like.ref == "CR-2"
