"""Tests of the `/contract` command table, tokenizer, parser and generated help."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.args import (
    COMMAND_ROLES,
    COMMAND_TEXT_MAX,
    COMMANDS,
    OFFICIAL_ALIASES,
    QUESTION_IDS,
    RELEVANT_OFFICIALS,
    SETTINGS,
    STATUSES,
    Kind,
    ParsedCommand,
    help_text,
    parse_command,
    tokenize,
    usage,
)
from bot.domain.errors import InputError
from bot.domain.text import escape_mrkdwn

TODAY = date(2025, 6, 1)

PARAGON = (
    'file vendor="Paragon Solutions" product=Graphite agency="ICE" component="HSI Division 3" '
    "value=2000000 awarded=2024-09-27 purpose=operational"
)

DATED = (
    "stopwork",
    "resume",
    "determine",
    "certify",
    "notify",
    "clear",
    "waiver",
    "waiver-report",
    "revoke-waiver",
    "close",
    "redetermine",
    "vendor event",
    "sent",
)


def parse(text: str) -> ParsedCommand:
    """Parse with the fixed test date."""
    return parse_command(text, today=TODAY)


# --- the table ------------------------------------------------------------------------------------------


def test_table_has_every_spec_subcommand() -> None:
    expected = {
        "file", "show", "list", "assign", "answer", "stopwork", "resume", "determine", "certify", "notify",
        "clear", "waiver", "waiver-report", "revoke-waiver", "close", "reopen", "redetermine", "audit", "help",
        "admin grant", "admin revoke", "admin roles", "admin set", "admin settings", "admin export",
        "restrict", "unrestrict",
        "vendor show", "vendor alias", "vendor affiliate", "screen",
        "draft", "sent",
        "stopwork-extend", "vendor event",
        "timeline", "report",
    }  # fmt: skip
    assert set(COMMANDS) == expected


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("file", "anyone"), ("show", "anyone"), ("list", "anyone"), ("audit", "anyone"), ("help", "anyone"),
        ("answer", "reviewer"),
        ("assign", "manager"), ("stopwork", "manager"), ("resume", "manager"), ("notify", "manager"),
        ("clear", "manager"), ("close", "manager"), ("restrict", "manager"), ("unrestrict", "manager"),
        ("determine", "official"), ("certify", "official"), ("waiver", "official"),
        ("waiver-report", "official"), ("revoke-waiver", "official"),
        ("admin grant", "admin"), ("admin revoke", "admin"), ("admin roles", "admin"), ("admin set", "admin"),
        ("admin settings", "admin"), ("admin export", "admin"),
    ],
)  # fmt: skip
def test_roles_follow_spec(name: str, role: str) -> None:
    assert COMMANDS[name].role == role


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_is_well_formed(name: str) -> None:
    command = COMMANDS[name]
    assert command.role in COMMAND_ROLES
    assert command.summary and "\n" not in command.summary
    assert command.usage.startswith(f"/contract {name}")
    # Usage is shown inside a mrkdwn code span: it must carry no control characters of its own.
    assert not set("<>&`") & set(command.usage)
    assert command.dated == (name in DATED)
    for option in command.options:
        assert option.help
        assert option.key in command.usage


def test_question_ids() -> None:
    assert len(QUESTION_IDS) == 20
    assert QUESTION_IDS[0] == "SCOPE-1" and QUESTION_IDS[-1] == "MIT-4"


def test_usage_of_admin_group_and_unknown() -> None:
    assert "grant" in usage("admin") and "export" in usage("admin")
    with pytest.raises(KeyError):
        usage("nope")


# --- good input -----------------------------------------------------------------------------------------

GOOD: list[tuple[str, str, int | None, dict[str, object]]] = [
    (
        PARAGON,
        "file",
        None,
        {
            "vendor": "Paragon Solutions",
            "product": "Graphite",
            "agency": "ICE",
            "component": "HSI Division 3",
            "value_cents": 200_000_000,
            "awarded": date(2024, 9, 27),
            "purpose": "operational",
        },
    ),
    (
        "file vendor=“Paragon Solutions” product=“Graphite” agency=“ICE” third_party=no "
        "parent=“AE Industrial”",
        "file",
        None,
        {"vendor": "Paragon Solutions", "third_party": False, "parent": "AE Industrial"},
    ),
    # iOS smart punctuation types a closing quote right after "=".
    ('file vendor=”Paragon Solutions” product=G agency=ICE', "file", None, {"vendor": "Paragon Solutions"}),
    (
        'file vendor=X product=Y agency=Z third_party=yes purpose=crime-investigation term="12 months" '
        'contract_no="70CMSD24C00000001" scope="remote access"',
        "file",
        None,
        {"third_party": True, "purpose": "crime-investigation", "term": "12 months",
         "contract_no": "70CMSD24C00000001", "scope": "remote access"},
    ),
    ("FILE Vendor=X Product=Y Agency=Z Purpose=Excluded", "file", None, {"purpose": "excluded"}),
    ("file vendor=X product=Y agency=Z third-party=yes", "file", None, {"third_party": True}),
    ("file vendor=X product=Y agency=Z value=2,000,000", "file", None, {"value_cents": 200_000_000}),
    ("file vendor=X product=Y agency=Z value=$2,000,000", "file", None, {"value_cents": 200_000_000}),
    ("file vendor=X product=Y agency=Z value=2000000.50", "file", None, {"value_cents": 200_000_050}),
    ("file vendor=X product=Y agency=Z value=2000000.5", "file", None, {"value_cents": 200_000_050}),
    ("file vendor=X product=Y agency=Z value=0", "file", None, {"value_cents": 0}),
    ("file vendor=X product=Y agency=Z awarded=2025-06-01", "file", None, {"awarded": TODAY}),
    ("file", "file", None, {}),
    ("show CR-12", "show", 12, {}),
    ("show cr-12", "show", 12, {}),
    ("audit CR-3", "audit", 3, {}),
    ("list", "list", None, {"status": None}),
    *[(f"list {s}", "list", None, {"status": s}) for s in STATUSES],
    ("list In-Review", "list", None, {"status": "in-review"}),
    ("assign CR-1 <@U123>", "assign", 1, {"users": ("U123",)}),
    ("assign CR-1 <@U123|jane doe> <@W456|bob> <@U123>", "assign", 1, {"users": ("U123", "W456")}),
    ("answer CR-1 CI-4 no", "answer", 1, {"qid": "CI-4", "answer": "no"}),
    (
        'answer CR-1 CI-4 no note="AE Industrial Partners is US-owned, see <https://example.com|report>"',
        "answer",
        1,
        {"qid": "CI-4", "answer": "no",
         "note": "AE Industrial Partners is US-owned, see <https://example.com|report>"},
    ),
    ("answer CR-1 ci-4 Unknown", "answer", 1, {"qid": "CI-4", "answer": "unknown"}),
    ("answer CR-2 scope-1 YES note=“see thread”", "answer", 2, {"qid": "SCOPE-1", "answer": "yes",
                                                                 "note": "see thread"}),
    ("answer cr-2 MIT-4 yes", "answer", 2, {"qid": "MIT-4"}),
    ('stopwork CR-1 reason="DHS review pending"', "stopwork", 1, {"reason": "DHS review pending"}),
    ('stopwork CR-1 reason="DHS review" on=2024-10-01', "stopwork", 1, {"on": date(2024, 10, 1)}),
    ('resume CR-1 reason="review done" on=2025-06-01', "resume", 1, {"reason": "review done"}),
    ('determine CR-1 not-risky reason="no flags"', "determine", 1, {"outcome": "not-risky"}),
    ('determine CR-1 prohibited reason="IU-1"', "determine", 1, {"outcome": "prohibited"}),
    ('determine CR-1 Out-Of-Scope reason="SCOPE-1 no"', "determine", 1, {"outcome": "out-of-scope"}),
    ('certify CR-1 official="Secretary of Homeland Security"', "certify", 1,
     {"official": "Secretary of Homeland Security"}),
    (
        "certify CR-1 official=SecDHS on=2025-01-02",
        "certify",
        1,
        {"official": "Secretary of Homeland Security", "on": date(2025, 1, 2)},
    ),
    ("notify CR-1", "notify", 1, {}),
    ("notify CR-1 on=2025-05-30", "notify", 1, {"on": date(2025, 5, 30)}),
    ("clear CR-1", "clear", 1, {}),
    (
        'waiver CR-1 official=DAG until=2026-05-31 reason="extraordinary"',
        "waiver",
        1,
        {"official": "Deputy Attorney General", "until": date(2026, 5, 31), "reason": "extraordinary"},
    ),
    (
        'waiver CR-1 official="D/CIA" until=2025-06-01 reason=r on=2025-03-01',
        "waiver",
        1,
        {"official": "Director of the Central Intelligence Agency", "until": TODAY},
    ),
    ("waiver-report CR-1", "waiver-report", 1, {}),
    ("waiver-report CR-1 on=2025-05-01", "waiver-report", 1, {"on": date(2025, 5, 1)}),
    ('revoke-waiver CR-1 reason="alternative found"', "revoke-waiver", 1, {"reason": "alternative found"}),
    ('close CR-1 reason="terminated"', "close", 1, {"reason": "terminated"}),
    ("admin grant <@U123> reviewer", "admin grant", None, {"user": "U123", "role": "reviewer"}),
    ("admin revoke <@U123|jane> Official", "admin revoke", None, {"user": "U123", "role": "official"}),
    ("ADMIN roles", "admin roles", None, {}),
    ("admin settings", "admin settings", None, {}),
    ("admin export", "admin export", None, {"format": "csv"}),
    ("admin export json", "admin export", None, {"format": "json"}),
    ("admin set review_channel <#C0123ABC|reviews>", "admin set", None,
     {"key": "review_channel", "value": "C0123ABC"}),
    ("admin set manager_channel C0456DEF1", "admin set", None, {"value": "C0456DEF1"}),
    ("admin set reminder_hour 0", "admin set", None, {"key": "reminder_hour", "value": 0}),
    ("admin set reminder_hour 23", "admin set", None, {"key": "reminder_hour", "value": 23}),
    ("admin set stopwork_reminders off", "admin set", None, {"key": "stopwork_reminders", "value": False}),
    ("admin set unanswered_reminder_days 30", "admin set", None, {"value": 30}),
    ("admin set escalation_days 60", "admin set", None, {"value": 60}),
    ("admin set digest ON", "admin set", None, {"key": "digest", "value": True}),
    # key=value as well as key value, and every way of writing yes/no or on/off
    ("admin set reminder_hour=9", "admin set", None, {"key": "reminder_hour", "value": 9}),
    ("admin set Reminder-Hour=9", "admin set", None, {"key": "reminder_hour", "value": 9}),
    ("admin set review_channel=<#C0123ABC|reviews>", "admin set", None,
     {"key": "review_channel", "value": "C0123ABC"}),
    ("admin set digest=off", "admin set", None, {"key": "digest", "value": False}),
    ("admin set digest yes", "admin set", None, {"key": "digest", "value": True}),
    ("admin set digest True", "admin set", None, {"key": "digest", "value": True}),
    ("admin set stopwork_reminders=no", "admin set", None, {"value": False}),
    ("admin set stopwork_reminders FALSE", "admin set", None, {"value": False}),
    ("file vendor=X product=Y agency=Z third_party=true", "file", None, {"third_party": True}),
    ("file vendor=X product=Y agency=Z third_party=False", "file", None, {"third_party": False}),
    ("file vendor=X product=Y agency=Z third_party=on", "file", None, {"third_party": True}),
    ("file vendor=X product=Y agency=Z third_party=OFF", "file", None, {"third_party": False}),
    ("answer CR-1 CI-4 true", "answer", 1, {"qid": "CI-4", "answer": "yes"}),
    ("answer CR-1 CI-4 False", "answer", 1, {"qid": "CI-4", "answer": "no"}),
    ("", "help", None, {"subcommand": None}),
    ("   ", "help", None, {"subcommand": None}),
    ("help", "help", None, {"subcommand": None}),
    ("help determine", "help", None, {"subcommand": "determine"}),
    ("help admin", "help", None, {"subcommand": "admin"}),
    ("help admin grant", "help", None, {"subcommand": "admin grant"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "name", "ref", "expected"), GOOD)
def test_good_input_parses(text: str, name: str, ref: int | None, expected: dict[str, object]) -> None:
    parsed = parse(text)
    assert parsed.name == name
    assert parsed.role == COMMANDS[name].role
    assert parsed.ref == ref
    for key, value in expected.items():
        assert parsed.args[key] == value, key


@pytest.mark.parametrize(("text", "name", "ref", "expected"), GOOD)
def test_typed_accessors_give_each_value_with_the_tables_type(
    text: str, name: str, ref: int | None, expected: dict[str, object]
) -> None:
    parsed = parse(text)
    for key, value in expected.items():
        if value is not None:
            assert parsed.require(key, type(value)) == value
            assert parsed.get(key, object) == value
    if ref is not None:
        assert parsed.contract == ref


def test_typed_accessors_refuse_what_the_table_does_not_declare() -> None:
    parsed = parse('waiver CR-3 official=AG until=2025-09-01 reason="x"')
    assert parsed.require("until", date) == date(2025, 9, 1) and parsed.get("on", date) is None
    assert parsed.require("official", str) == "Attorney General" and parsed.contract == 3
    with pytest.raises(KeyError, match="no argument `reasn`"):
        parsed.get("reasn", str)
    with pytest.raises(TypeError, match="`until` is until, not str"):
        parsed.get("until", str)
    with pytest.raises(KeyError, match="without `on`"):
        parsed.require("on", date)
    with pytest.raises(ValueError, match="names no contract"):
        _ = parse("list").contract
    assert parse("admin set digest off").require("value", bool) is False
    assert parse("admin set reminder_hour 7").require("value", int) == 7
    assert parse("assign CR-1 <@U1> <@U2>").require("users", tuple) == ("U1", "U2")


@pytest.mark.parametrize("name", [n for n in DATED if n != "vendor event"])  # names a vendor, not a contract
def test_dated_actions_default_to_today_and_take_on(name: str) -> None:
    command = COMMANDS[name]
    fill = {
        "reason": 'reason="r"',
        "official": "official=AG",
        "until": "until=2025-12-31",
    }
    extra = " ".join(fill[o.key] for o in command.options if o.required)
    positional = {"determine": " not-risky", "sent": " apnsa"}.get(name, "")
    parsed = parse(f"{name} CR-7{positional} {extra}")
    assert parsed.on == TODAY and "on" not in parsed.args
    parsed = parse(f"{name} CR-7{positional} {extra} on=2024-12-31")
    assert parsed.on == date(2024, 12, 31) and parsed.args["on"] == date(2024, 12, 31)
    assert parsed.reference == "CR-7"


def test_undated_commands_have_no_on() -> None:
    assert parse("show CR-1").on is None
    assert parse(PARAGON).on is None


def test_bare_file_opens_modal() -> None:
    assert parse("file").opens_modal
    assert not parse(PARAGON).opens_modal


@pytest.mark.parametrize(
    ("form", "title"),
    [
        ("Secretary of Defense", "Secretary of Defense"),
        ("secdef", "Secretary of Defense"),
        ("SecDef", "Secretary of Defense"),
        ("Attorney General", "Attorney General"),
        ("the attorney general", "Attorney General"),
        ("AG", "Attorney General"),
        ("Deputy Attorney General", "Deputy Attorney General"),
        ("DAG", "Deputy Attorney General"),
        ("Secretary of Homeland Security", "Secretary of Homeland Security"),
        ("SecDHS", "Secretary of Homeland Security"),
        ("DHS Secretary", "Secretary of Homeland Security"),
        ("Director of National Intelligence", "Director of National Intelligence"),
        ("DNI", "Director of National Intelligence"),
        ("d.n.i.", "Director of National Intelligence"),
        ("Director of the Central Intelligence Agency", "Director of the Central Intelligence Agency"),
        ("D/CIA", "Director of the Central Intelligence Agency"),
        ("CIA Director", "Director of the Central Intelligence Agency"),
        ("Director of the National Security Agency", "Director of the National Security Agency"),
        ("D/NSA", "Director of the National Security Agency"),
        ("NSA director", "Director of the National Security Agency"),
        ("DIRNSA", "Director of the National Security Agency"),
    ],
)
def test_official_forms_normalize(form: str, title: str) -> None:
    assert parse(f'certify CR-1 official="{form}"').args["official"] == title


def test_every_alias_maps_to_a_relevant_official() -> None:
    assert set(OFFICIAL_ALIASES.values()) == set(RELEVANT_OFFICIALS)
    assert len(RELEVANT_OFFICIALS) == 7


# --- bad input ------------------------------------------------------------------------------------------

LONG = "x" * 10_000
BAD: list[tuple[str, list[str], str]] = [
    # (text, words the message must contain, command whose usage must be attached)
    ("fiel", ["Unknown subcommand", "`fiel`", "Did you mean `file`"], "file"),
    ("determin CR-1", ["Unknown subcommand", "`determine`"], "determine"),
    ("frobnicate", ["Unknown subcommand", "/contract help"], "help"),
    ('""', ["subcommand is empty"], "help"),
    ("admin", ["needs an action", "grant"], "admin"),
    ("admin grnat <@U1> reviewer", ["Unknown admin action", "admin grant"], "admin grant"),
    ("admin frob", ["Unknown admin action"], "admin"),
    ("file vendor=X product=Y agency=Z color=red", ["Unknown key `color=`", "vendor=", "scope="], "file"),
    ("file vendor=X product=Y agency=Z vendr=Q", ["Unknown key", "Did you mean `vendor`"], "file"),
    ("show CR-1 on=2025-01-01", ["takes no key=value options"], "show"),
    ("file vendor=X vendor=Y product=Y agency=Z", ["`vendor=` is given twice"], "file"),
    ("file vendor=X", ["missing", 'product="…"', 'agency="…"'], "file"),
    ("file product=Y agency=Z", ["missing", 'vendor="…"'], "file"),
    ("file vendor=X product=Y agency=Z extra", ["Unexpected `extra`"], "file"),
    ("show CR-1 CR-2", ["Unexpected `CR-2`"], "show"),
    ("determine CR-1 prohibited reason=vendor cancelled", ["Unexpected `cancelled`", "quotes"], "determine"),
    ('determine CR-1 prohibited reason "x"', ["Unexpected `reason`", "Did you mean `reason="], "determine"),
    ("show", ["missing `CR-n`"], "show"),
    ("show CR-x", ["`CR-x` is not a contract reference", "CR-12"], "show"),
    ("show CR-0", ["not a contract reference"], "show"),
    ("show CR-", ["not a contract reference"], "show"),
    ("show 12", ["not a contract reference"], "show"),
    ("show CR-12345678901", ["not a contract reference"], "show"),
    ("notify CR-1 on=2024-13-40", ["not a real calendar date", "YYYY-MM-DD"], "notify"),
    ("notify CR-1 on=24-9-27", ["not a date", "YYYY-MM-DD"], "notify"),
    ("notify CR-1 on=2024/09/27", ["not a date", "YYYY-MM-DD"], "notify"),
    ("notify CR-1 on=2024-02-30", ["not a real calendar date"], "notify"),
    ("notify CR-1 on=２０２４-０９-２７", ["not a date"], "notify"),
    ("notify CR-1 on=2025-06-02", ["in the future", "dates in the future are refused"], "notify"),
    ("file vendor=X product=Y agency=Z awarded=2030-01-01", ["in the future"], "file"),
    ("file vendor=X product=Y agency=Z value=abc", ["not an amount in US dollars", "2,000,000"], "file"),
    ("file vendor=X product=Y agency=Z value=-5", ["negative"], "file"),
    ("file vendor=X product=Y agency=Z value=$-5", ["negative"], "file"),
    ("file vendor=X product=Y agency=Z value=100000000000000", ["not a plausible contract value"], "file"),
    ("file vendor=X product=Y agency=Z value=2.000.000", ["not an amount"], "file"),
    ("file vendor=X product=Y agency=Z value=1.234", ["not an amount"], "file"),
    ("file vendor=X product=Y agency=Z value=2,00,000", ["not an amount"], "file"),
    ("file vendor=X product=Y agency=Z purpose=fun", ["`purpose` must be one of", "operational"], "file"),
    ("file vendor=X product=Y agency=Z purpose=operationl", ["Did you mean `operational`"], "file"),
    ("file vendor=X product=Y agency=Z third_party=maybe", ["`third_party` must be yes or no", "true/false"],
     "file"),
    ("file vendor=“Paragon product=Y agency=Z", ["Unbalanced quote"], "file"),
    ('answer CR-1 CI-4 no note="unclosed', ["Unbalanced quote"], "answer"),
    ("answer CR-1 CI-5 no", ["`CI-5` is not a question ID", "CI-4"], "answer"),
    ("answer CR-1 FOO-1 no", ["not a question ID"], "answer"),
    ("answer CR-1 CI-4 maybe", ["`answer` must be one of yes, no, unknown"], "answer"),
    ("answer CR-1 CI-4", ["missing `yes|no|unknown`"], "answer"),
    ("answer CR-1", ["missing `QID`"], "answer"),
    ('determine CR-1 risky reason="x"', ["`outcome` must be one of", "not-risky"], "determine"),
    ("determine CR-1 prohibited", ["missing", 'reason="…"'], "determine"),
    ("stopwork CR-1", ["missing", 'reason="…"'], "stopwork"),
    ("resume CR-1", ["missing", "reason"], "resume"),
    ("revoke-waiver CR-1", ["missing", "reason"], "revoke-waiver"),
    ("close CR-1", ["missing", "reason"], "close"),
    ('stopwork CR-1 reason=""', ["`reason` is empty"], "stopwork"),
    ("certify CR-1", ["missing", 'official="…"'], "certify"),
    ('certify CR-1 official="Secretary of State"', ["not a relevant official", "Deputy Attorney General"],
     "certify"),
    ('waiver CR-1 official=AG reason="x"', ["missing", "until=DATE"], "waiver"),
    ('waiver CR-1 official=AG until=2025-06-01 reason="x"', ["must be after the waiver's date"], "waiver"),
    ('waiver CR-1 official=AG until=2025-01-01 reason="x"', ["must be after"], "waiver"),
    ('waiver CR-1 official=AG until=2025-05-01 reason="x" on=2025-01-01', ["in the past"], "waiver"),
    ('waiver CR-1 official=AG until=2026-13-01 reason="x"', ["not a real calendar date"], "waiver"),
    ("assign CR-1", ["needs @user…"], "assign"),
    ("assign CR-1 @jane", ["`@jane` is not a user mention"], "assign"),
    ("assign CR-1 <#C0123ABC|general>", ["not a user mention"], "assign"),
    ("admin grant jane reviewer", ["not a user mention"], "admin grant"),
    ("admin grant <@U1> boss", ["`role` must be one of reviewer, manager, official, admin"], "admin grant"),
    ("admin grant <@U1>", ["missing `role`"], "admin grant"),
    ("admin set colour blue", ["no setting `colour`", "reminder_hour"], "admin set"),
    ("admin set reminder_hour 24", ["whole number from 0 to 23"], "admin set"),
    ("admin set reminder_hour nine", ["whole number"], "admin set"),
    ("admin set escalation_days 0", ["from 1 to 60"], "admin set"),
    ("admin set unanswered_reminder_days 31", ["from 1 to 30"], "admin set"),
    ("admin set digest maybe", ["`digest` must be on or off", "yes/no"], "admin set"),
    ("admin set review_channel general", ["needs a channel"], "admin set"),
    ("admin set reminder_hour", ["missing `VALUE`"], "admin set"),
    ("admin set reminder_hour=24", ["`reminder_hour` must be a whole number from 0 to 23"], "admin set"),
    ("admin set remindr_hour=9", ["no setting `remindr_hour`", "Did you mean `reminder_hour`"], "admin set"),
    ("admin set digest=", ["`digest` is empty"], "admin set"),
    ("assign CR-1 <@U1>, <@U2>", ["Separate mentions with spaces, not commas"], "assign"),
    ("assign CR-1 <@U1>,<@U2>", ["Separate mentions with spaces, not commas"], "assign"),
    ("assign CR-1 <@U1> , <@U2>", ["Separate mentions with spaces, not commas"], "assign"),
    ("assign CR-1 <@U1> and <@U2>", ["Separate mentions with spaces, not commas or “and”"], "assign"),
    ("assign CR-1 <@U1>; <@U2>", ["Separate mentions with spaces"], "assign"),
    ("admin grant <@U1>, reviewer", ["Separate mentions with spaces"], "admin grant"),
    ("answer CR-1 CI-4 maybe", ["`answer` must be one of yes, no, unknown"], "answer"),
    ("admin export xml", ["must be one of csv, json"], "admin export"),
    ("list open", ["`status` must be one of", "in-review"], "list"),
    ("help frobnicate", ["no subcommand `frobnicate`"], "help"),
    ("help determin", ["Did you mean `determine`"], "help"),
    (f"file vendor={LONG} product=Y agency=Z", ["too long", "10,000", "200"], "file"),
    (f'stopwork CR-1 reason="{LONG}"', ["too long", "10,000", "2,000"], "stopwork"),
    (f"answer CR-1 CI-4 no note={LONG}", ["too long", "2,000"], "answer"),
    ('file vendor="TOP SECRET vendor" product=Y agency=Z', ["classification marking",
                                                           "never classified substance"], "file"),
    ('answer CR-1 CI-4 no note="per SECRET//NOFORN cable"', ["classification marking"], "answer"),
    ('stopwork CR-1 reason="(S//NF) tasking"', ["classification marking"], "stopwork"),
    ('file vendor="a\x00b" product=Y agency=Z', ["control character"], "file"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "needles", "usage_of"), BAD)
def test_bad_input_names_problem_and_usage(text: str, needles: list[str], usage_of: str) -> None:
    with pytest.raises(InputError) as info:
        parse(text)
    error = info.value
    for needle in needles:
        assert needle in str(error), (needle, str(error))
    assert error.usage == usage(usage_of)
    assert error.user_text().endswith(f"Usage: `{usage(usage_of)}`")
    # The message is shown as mrkdwn as is: user input quoted back must be inert.
    assert "<" not in error.user_text() and ">" not in error.user_text()


def test_error_messages_quote_user_input_escaped_and_short() -> None:
    with pytest.raises(InputError) as info:
        parse("<!channel>" + "x" * 500)
    text = info.value.user_text()
    assert "&lt;!channel&gt;" in text
    assert len(text) < 400


# --- injection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vendor", ["<!channel>", "<@U123>", "<!here|here>", "<https://evil.example|click>", "@channel", "a & b"]
)
def test_injection_is_stored_as_typed_and_escaped_inert(vendor: str) -> None:
    parsed = parse(f"file vendor=“{vendor}” product=Y agency=Z")
    assert parsed.args["vendor"] == vendor
    shown = escape_mrkdwn(str(parsed.args["vendor"]))
    assert "<" not in shown and ">" not in shown


def test_quoted_injection_is_stored_as_typed() -> None:
    assert parse('file vendor="<!channel> Ltd" product=Y agency=Z').args["vendor"] == "<!channel> Ltd"


# --- tokenizer ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ('vendor="Paragon Solutions" x', ["vendor=Paragon Solutions", "x"]),
        ("key=“a b”", ["key=a b"]),
        ("key=”a b”", ["key=a b"]),
        ("key=„a b“", ["key=a b"]),
        ("a   b\tc\nd", ["a", "b", "c", "d"]),
        ("<@U123|jane doe> x", ["<@U123|jane doe>", "x"]),
        ("<#C123|general chat>", ["<#C123|general chat>"]),
        ("<https://x.example/a b|label here>", ["<https://x.example/a b|label here>"]),
        ("a<b c", ["a<b", "c"]),
        ("vendor=O'Brien", ["vendor=O'Brien"]),
        ("vendor=O’Brien Ltd", ["vendor=O’Brien", "Ltd"]),
        ('x="" y', ["x=", "y"]),
        ('""', [""]),
        ('a"b c"d', ["ab cd"]),
        ("", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize("text", ['vendor="abc', "“abc", 'a "b" "c', 'a="b\\"', 'a="b\\\\\\"'])
def test_tokenize_unbalanced_quotes(text: str) -> None:
    with pytest.raises(InputError, match="Unbalanced quote"):
        tokenize(text)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        # a backslash before a quote makes it part of the value
        ('reason="he said \\"no\\""', ['reason=he said "no"']),
        ("reason=“he said \\“no\\” to it”", ["reason=he said “no” to it"]),
        ('reason=\\"unquoted\\"', ['reason="unquoted"']),
        ('a=\\" b', ['a="', "b"]),
        # two backslashes before a quote are one backslash, and the quote still closes
        ('note="C:\\dir\\\\" x', ["note=C:\\dir\\", "x"]),
        ('note="a\\\\\\"b"', ['note=a\\"b']),
        # any other backslash is kept as typed
        ('note="\\\\server\\share\\x"', ["note=\\\\server\\share\\x"]),
        ("note=C:\\temp\\new", ["note=C:\\temp\\new"]),
        ("a\\ b", ["a\\", "b"]),
        ("\\", ["\\"]),
    ],
)
def test_tokenize_backslash_escapes(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_escaped_quotes_reach_the_value() -> None:
    parsed = parse('close CR-1 reason="the vendor said \\"no\\" to the audit"')
    assert parsed.args["reason"] == 'the vendor said "no" to the audit'


# --- size and cost --------------------------------------------------------------------------------------


def test_command_text_over_slacks_limit_is_refused_unread() -> None:
    with pytest.raises(InputError) as info:
        parse('stopwork CR-1 reason="' + "x" * 2_000_000 + '"')
    text = info.value.user_text()
    assert "too long" in text and "2,000,023 characters" in text and f"{COMMAND_TEXT_MAX:,}" in text
    assert "Usage: `/contract stopwork CR-n" in text


def test_command_text_at_the_limit_is_parsed() -> None:
    text = 'stopwork CR-1 reason="' + "x" * (COMMAND_TEXT_MAX - 23) + '"'
    assert len(text) == COMMAND_TEXT_MAX
    with pytest.raises(InputError, match="`reason` is too long"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "show " + "<@" * 19_000,  # each `<@` once searched the rest of the text for its `>`
        "show " + "<https:" * 5_000,
        'file vendor="' + "\\" * 19_000 + '"',
        "list " + '" "' * 13_000,
        "help " + "x " * 19_000,
        'file scope="' + "(S " * 13_000 + '"',
        "assign CR-1 " + "<@U1>, " * 5_000,
    ],
)
def test_worst_shapes_within_the_limit_are_answered(text: str) -> None:
    # one pass each (no timing asserted: a quadratic parser made these take seconds, the suite would show it)
    assert len(text) <= COMMAND_TEXT_MAX
    with pytest.raises(InputError):
        parse(text)


_SAFE_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"),
    blacklist_characters='"\u201c\u201d\u201e\u201f<\u0085\u180e\u200b',
)
_SAFE_TOKEN = st.text(_SAFE_CHARS, min_size=1, max_size=20).filter(lambda t: not any(c.isspace() for c in t))


@given(st.lists(_SAFE_TOKEN, max_size=8))
def test_tokenize_roundtrips_safe_tokens(tokens: list[str]) -> None:
    assert tokenize(" ".join(tokens)) == tokens


@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters='"\u201c\u201d\u201e\u201f\\'),
            max_size=20,
        ),
        max_size=6,
    )
)
def test_tokenize_roundtrips_quoted_tokens(tokens: list[str]) -> None:
    assert tokenize(" ".join(f'"{t}"' for t in tokens)) == tokens


def _quoted(value: str) -> str:
    """The value written as a quoted token: backslashes before a quote (or the end) doubled, quotes escaped."""
    value = re.sub(r'(\\+)(?=["\u201c\u201d\u201e\u201f]|$)', r"\1\1", value)
    return '"' + re.sub(r'(["\u201c\u201d\u201e\u201f])', r"\\\1", value) + '"'


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=20), max_size=6))
def test_tokenize_roundtrips_any_value_quoted_with_escapes(tokens: list[str]) -> None:
    assert tokenize(" ".join(_quoted(t) for t in tokens)) == tokens


# --- robustness -----------------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [*COMMANDS, "admin", "CR-1", "cr-0", "CR-x", "CI-4", "yes", "no", "<@U1>", "<@U1|a b>", "<!channel>",
     "on=2024-01-01", "on=2030-01-01", "until=2026-01-01", "reason=", 'reason="a b"', "reason=“x”",
     "official=AG", "vendor=", "value=1,000", "=", "==", '"', "“", "<", ">", "<#C0123ABC|x>", "TOP SECRET",
     "on=2024-13-40", "value=-1", "purpose=operational", "note=\u0000", "reminder_hour", "24", "C0123ABC"]
)  # fmt: skip


def _check_parse(text: str) -> None:
    """parse_command returns a ParsedCommand or raises InputError whose reply is inert mrkdwn."""
    try:
        parsed = parse_command(text, today=TODAY)
    except InputError as e:
        assert e.message
        assert "<" not in e.user_text() and ">" not in e.user_text()
    else:
        assert isinstance(parsed, ParsedCommand)
        assert parsed.name in COMMANDS


@settings(max_examples=300)
@given(st.text())
def test_parse_command_on_arbitrary_text_only_raises_input_error(text: str) -> None:
    _check_parse(text)


@settings(max_examples=500)
@given(st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=8))
def test_parse_command_on_command_like_text_only_raises_input_error(words: list[str]) -> None:
    _check_parse(" ".join(words))


# --- help -----------------------------------------------------------------------------------------------


def test_overview_help_lists_every_command_grouped_by_role() -> None:
    text = help_text()
    for name in COMMANDS:
        assert f"/contract {name}" in text, name
    assert "/contract help &lt;subcommand&gt;" in text
    assert text.index("*Anyone*") < text.index("role `reviewer`") < text.index("role `admin`")
    assert "<" not in text and ">" not in text


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_for_each_command_is_generated_from_the_table(name: str) -> None:
    command = COMMANDS[name]
    text = help_text(name)
    assert escape_mrkdwn(command.usage) in text
    assert command.summary in text
    assert (command.role == "anyone" and "Who: anyone" in text) or f"role `{command.role}`" in text
    for option in command.options:
        assert option.placeholder in text and option.help in text
        assert ("(required)" if option.required else "(optional)") in text
    for positional in command.positionals:
        assert positional.placeholder in text and positional.help in text
    assert "<" not in text and ">" not in text


def test_help_for_admin_set_lists_settings() -> None:
    text = help_text("admin set")
    for setting in SETTINGS.values():
        assert setting.key in text and setting.description in text


def test_help_for_admin_group_and_unknown() -> None:
    text = help_text("admin")
    assert all(f"/contract {n}" in text for n in COMMANDS if n.startswith("admin "))
    with pytest.raises(InputError, match="Did you mean `determine`"):
        help_text("determin")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_subcommand_parses_for_every_command(name: str) -> None:
    parsed = parse(f"help {name}")
    assert parsed.args["subcommand"] == name
    assert help_text(str(parsed.args["subcommand"]))


def test_kinds_cover_the_table() -> None:
    used = {o.kind for c in COMMANDS.values() for o in c.options}
    used |= {p.kind for c in COMMANDS.values() for p in c.positionals}
    assert used == set(Kind)
