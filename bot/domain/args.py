"""The `/contract` command table, its tokenizer and parser, and help generated from the same table."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TypeVar

from bot.domain import questions, schedule
from bot.domain.errors import InputError
from bot.domain.paperwork import KINDS as NOTICE_KINDS
from bot.domain.questions import ANSWER_VALUES, QUESTIONS
from bot.domain.review import OUTCOMES, STATUSES
from bot.domain.roles import ANYONE, ROLES
from bot.domain.text import (
    check_free_text,
    escape_mrkdwn,
    find_classification_marking,
    parse_channel_ref,
    parse_user_mention,
)

__all__ = [
    "ANSWER_VALUES",
    "ANYONE",
    "BOOLEAN_WORDS",
    "COMMANDS",
    "COMMAND_ROLES",
    "COMMAND_TEXT_MAX",
    "EXPORT_FORMATS",
    "MAX_VALUE_DOLLARS",
    "OFFICIAL_ALIASES",
    "OUTCOMES",
    "PAGE_SIZES",
    "PURPOSES",
    "QUESTION_IDS",
    "RELEVANT_OFFICIALS",
    "ROLES",
    "SETTINGS",
    "STATUSES",
    "Command",
    "Kind",
    "Option",
    "ParsedCommand",
    "Positional",
    "Setting",
    "help_text",
    "parse_command",
    "tokenize",
    "usage",
]

# --- vocabularies ---------------------------------------------------------------------------------------

# Roles, statuses, outcomes and questions are owned by the modules that give them meaning; the parser
# only names them (re-exported here for the table's readers).
COMMAND_ROLES = (ANYONE, *ROLES)
QUESTION_IDS: tuple[str, ...] = tuple(q.qid for q in QUESTIONS)  # the current set's, for help

PURPOSES = ("operational", "excluded", "crime-investigation")
EXPORT_FORMATS = ("csv", "json")

# EO 14093 §5(k) relevant officials, plus the Deputy Attorney General (the one delegation §2(f)/(m) allow).
RELEVANT_OFFICIALS = (
    "Secretary of Defense",
    "Attorney General",
    "Deputy Attorney General",
    "Secretary of Homeland Security",
    "Director of National Intelligence",
    "Director of the Central Intelligence Agency",
    "Director of the National Security Agency",
)

_OFFICIAL_FORMS: dict[str, tuple[str, ...]] = {
    # "Secretary of War" is the secondary title authorized for the Secretary of Defense in 2025.
    "Secretary of Defense": (
        "secdef",
        "sec def",
        "defense secretary",
        "secretary of defence",
        "secretary of war",
    ),
    "Attorney General": ("ag", "us attorney general"),
    "Deputy Attorney General": ("dag", "deputy ag"),
    "Secretary of Homeland Security": (
        "secdhs",
        "dhs secretary",
        "secretary of dhs",
        "homeland security secretary",
        "secretary of the department of homeland security",
    ),
    "Director of National Intelligence": (
        "dni",
        "director of the office of the director of national intelligence",
    ),
    "Director of the Central Intelligence Agency": (
        "d/cia",
        "dcia",
        "cia director",
        "director cia",
        "director of cia",
        "director of the cia",
        "director of central intelligence agency",
    ),
    "Director of the National Security Agency": (
        "d/nsa",
        "dirnsa",
        "nsa director",
        "director nsa",
        "director of nsa",
        "director of the nsa",
        "director of national security agency",
    ),
}

_DOTS = re.compile(r"[.’']")
_PUNCTUATION = re.compile(r"[,;:()]")
_SPACES = re.compile(r"\s+")


def _official_key(s: str) -> str:
    """The comparison form of an official's title: NFKC, lower case, no dots or commas, single spaces."""
    s = _DOTS.sub("", unicodedata.normalize("NFKC", s).lower())
    s = _SPACES.sub(" ", _PUNCTUATION.sub(" ", s)).strip()
    return s.removeprefix("the ")


OFFICIAL_ALIASES: dict[str, str] = {
    _official_key(form): title for title in RELEVANT_OFFICIALS for form in (title, *_OFFICIAL_FORMS[title])
}

MAX_VALUE_DOLLARS = 10**13
NAME_MAX = 200
CONTRACT_NO_MAX = 100
LONG_TEXT_MAX = 2000
SETTING_VALUE_MAX = 200
# Slack's limit on a message's text, so the most a slash command can carry; longer text is refused unread.
COMMAND_TEXT_MAX = 40_000
# How many items one page of a long answer holds, so every page fits in one Slack message (SLACK-FACTS F1.28).
AUDIT_PAGE_SIZE = 40
LIST_PAGE_SIZE = 20
PAGE_SIZES = {"audit": AUDIT_PAGE_SIZE, "list": LIST_PAGE_SIZE}


# --- runtime settings (`admin set KEY VALUE`) -----------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One runtime setting: its key, value type (channel, int or on/off), range, default and description."""

    key: str
    kind: str
    description: str
    default: object = None
    minimum: int | None = None
    maximum: int | None = None

    @property
    def value_form(self) -> str:
        """How the value is written, for usage and help."""
        if self.kind == "channel":
            return "#channel"
        if self.kind == "int":
            return f"{self.minimum}-{self.maximum}"
        if self.kind == "mm_dd":
            return "MM-DD"
        return "on|off"


_MM_DD_RE = re.compile(r"([0-9]{1,2})-([0-9]{1,2})")


def mm_dd(raw: str) -> str | None:
    """A day of every year as MM-DD ("3-27" -> "03-27"), or None: not a day, or 29 February (not in every year)."""
    m = _MM_DD_RE.fullmatch(raw.strip())
    if m is None:
        return None
    month, day = int(m.group(1)), int(m.group(2))
    try:
        date(2023, month, day)  # not a leap year
    except ValueError:
        return None
    return f"{month:02d}-{day:02d}"


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("review_channel", "channel", "channel where filings are posted and reviews run in threads"),
        Setting("manager_channel", "channel", "channel for manager reminders and the weekly digest"),
        Setting(
            "reminder_hour",
            "int",
            "hour of the day (bot time zone) reminders are sent",
            schedule.DEFAULT_REMINDER_HOUR,
            0,
            23,
        ),
        Setting("stopwork_reminders", "on_off", "daily reminders while a stop-work order is in effect", True),
        Setting(
            "unanswered_reminder_days",
            "int",
            "business days before reviewers are reminded of open questions",
            schedule.UNANSWERED_PING_BUSINESS_DAYS,
            1,
            30,
        ),
        Setting(
            "escalation_days",
            "int",
            "business days before open questions are escalated to managers",
            schedule.ESCALATION_BUSINESS_DAYS,
            1,
            60,
        ),
        Setting(
            "digest", "on_off", "the weekly digest in the manager channel, Mondays at the reminder hour", True
        ),
        Setting(
            "annual_report_due",
            "mm_dd",
            "the day the §4(d) annual report is due each year (its reporting year ends then); managers are "
            "reminded 30 and 7 days before",
            "03-27",
        ),
    )
}


# --- the command table ----------------------------------------------------------------------------------


class Kind(StrEnum):
    """How a raw argument is checked and what typed value it becomes."""

    TEXT = "text"  # one-line free text -> str (check_free_text)
    LONG_TEXT = "long_text"  # free text, line breaks allowed -> str
    DATE = "date"  # YYYY-MM-DD, not after today -> date
    UNTIL = "until"  # YYYY-MM-DD, after the action's date and not past -> date
    MONEY = "money"  # USD amount -> int cents
    CHOICE = "choice"  # one of `choices`, lower case -> str
    YES_NO = "yes_no"  # yes|no (true|false, on|off) -> bool
    OFFICIAL = "official"  # a relevant official -> canonical title str
    REF = "ref"  # CR-n -> int n (ParsedCommand.ref)
    QID = "qid"  # question ID -> upper-case str
    USER = "user"  # one <@U…> mention -> user ID str
    USERS = "users"  # one or more mentions -> tuple of user IDs
    TOPIC = "topic"  # a subcommand name for help -> str
    SETTING = "setting"  # a SETTINGS key -> str
    SETTING_VALUE = "setting_value"  # typed by the setting -> str channel ID | int | bool
    PAGE = "page"  # a page number, 1 or more -> int
    YEAR = "year"  # a year, YYYY -> int


@dataclass(frozen=True)
class Option:
    """A `key=value` option of a subcommand."""

    key: str
    kind: Kind
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    max_len: int = NAME_MAX
    dest: str = ""

    @property
    def arg_name(self) -> str:
        """The key of the typed value in ParsedCommand.args."""
        return self.dest or self.key

    @property
    def placeholder(self) -> str:
        """The option as written in usage, e.g. `awarded=DATE`."""
        if self.kind in (Kind.DATE, Kind.UNTIL):
            return f"{self.key}=DATE"
        if self.kind is Kind.MONEY:
            return f"{self.key}=USD"
        if self.kind is Kind.YES_NO:
            return f"{self.key}=yes|no"
        if self.kind is Kind.CHOICE:
            return f"{self.key}={'|'.join(self.choices)}"
        if self.kind is Kind.PAGE:
            return f"{self.key}=N"
        if self.kind is Kind.YEAR:
            return f"{self.key}=YYYY"
        return f'{self.key}="…"'


@dataclass(frozen=True)
class Positional:
    """A positional argument of a subcommand (matched in order, after key=value options are set aside)."""

    dest: str
    kind: Kind
    placeholder: str
    help: str
    required: bool = True
    choices: tuple[str, ...] = ()
    variadic: bool = False
    default: object = None


@dataclass(frozen=True)
class Command:
    """One `/contract` subcommand: the single source for parsing, permission checks and help."""

    name: str
    role: str
    summary: str
    positionals: tuple[Positional, ...] = ()
    options: tuple[Option, ...] = ()
    bare_ok: bool = False  # with no arguments at all it is valid (`file` then opens the filing modal)
    note: str = ""
    also: tuple[str, ...] = ()  # other roles that may run it too (`admin export`: managers)

    @property
    def dated(self) -> bool:
        """Whether the action accepts `on=DATE` and has an effective date."""
        return any(o.key == "on" for o in self.options)

    @property
    def usage(self) -> str:
        """The correct form, generated from the table, e.g. `/contract show CR-n`."""
        parts = [f"/contract {self.name}"]
        for p in self.positionals:
            parts.append(p.placeholder if p.required else f"[{p.placeholder}]")
        parts += [o.placeholder for o in self.options if o.required]
        parts += [f"[{o.placeholder}]" for o in self.options if not o.required]
        return " ".join(parts)

    def option(self, key: str) -> Option | None:
        """The option with this key, or None."""
        return next((o for o in self.options if o.key == key), None)


_REF = Positional("ref", Kind.REF, "CR-n", "the contract's reference, e.g. CR-12")
_ON = Option("on", Kind.DATE, "the day it happened, YYYY-MM-DD (default today; not in the future)")


def _page(what: str) -> Option:
    """The optional `page=N` of a long answer."""
    return Option("page", Kind.PAGE, f"which page to show, 1 or more (default 1: the {what})")


def _reason(help_: str = "why, in a sentence or two") -> Option:
    """The required `reason="…"` option."""
    return Option("reason", Kind.LONG_TEXT, help_, required=True, max_len=LONG_TEXT_MAX)


_OFFICIAL = Option(
    "official",
    Kind.OFFICIAL,
    "the relevant official (EO 14093 §5(k)) or the Deputy Attorney General: " + ", ".join(RELEVANT_OFFICIALS),
    required=True,
)

# SPEC "Access", in the words help shows next to every read
_NEED_TO_KNOW = (
    "You may read a contract you filed or are assigned to, and any contract while you hold a role; a restricted "
    "one only its filer, its assigned reviewers, managers, officials and admins."
)

# the order's notices (bot.domain.paperwork): `draft` and `sent`
_NOTICE_KIND = Positional(
    "kind",
    Kind.CHOICE,
    "|".join(NOTICE_KINDS),
    "which notice: apnsa (§2(g)), dni (§2(d)), waiver (§2(m)), redetermination (§2(j)), excluded (§4(b))",
    choices=NOTICE_KINDS,
)

_VENDOR = Positional(
    "name", Kind.TEXT, "NAME", "the vendor's name or an alias (quotes optional)", variadic=True
)

_COMMAND_LIST: tuple[Command, ...] = (
    Command(
        "file",
        ANYONE,
        "File a contract for review (with no arguments: opens a form).",
        options=(
            Option("vendor", Kind.TEXT, "the company furnishing the spyware", required=True),
            Option("product", Kind.TEXT, "the product's name", required=True),
            Option("agency", Kind.TEXT, "the buying agency", required=True),
            Option("component", Kind.TEXT, "the component or contracting office within the agency"),
            Option("value", Kind.MONEY, "contract value in US dollars, e.g. 2,000,000", dest="value_cents"),
            Option("awarded", Kind.DATE, "award date, YYYY-MM-DD (not in the future)"),
            Option(
                "term",
                Kind.TEXT,
                'period of performance: a duration from the award ("12 months", "1 year", "18 months", "2 years"; '
                "managers are reminded before it ends) or other words (kept as they are)",
            ),
            Option(
                "ends",
                Kind.UNTIL,
                "the period of performance's last day, YYYY-MM-DD (instead of a duration in term=)",
                dest="ends_on",
            ),
            Option(
                "purpose",
                Kind.CHOICE,
                "operational use, an excluded purpose (§4(b) notice due 45 days after award), "
                "or a criminal investigation of the spyware's own sale or use",
                choices=PURPOSES,
            ),
            Option("third_party", Kind.YES_NO, "whether a contractor or other third party runs the tool"),
            Option("parent", Kind.TEXT, "the ultimate parent or controlling owner of the vendor"),
            Option("contract_no", Kind.TEXT, "the contract number", max_len=CONTRACT_NO_MAX),
            Option("scope", Kind.LONG_TEXT, "what the contract covers", max_len=LONG_TEXT_MAX),
            Option(
                "anyway", Kind.YES_NO, "yes: file it even if it looks like an open contract already filed"
            ),
        ),
        bare_ok=True,
        note="With no arguments, `/contract file` opens the filing form.",
    ),
    Command(
        "show",
        ANYONE,
        "Status, answers, milestones, earliest permitted use and next reminders.",
        (_REF,),
        note=_NEED_TO_KNOW,
    ),
    Command(
        "list",
        ANYONE,
        "Contracts, newest first, optionally only those in one status.",
        (Positional("status", Kind.CHOICE, "status", "one of: " + ", ".join(STATUSES), False, STATUSES),),
        (_page("newest contracts"),),
        note=f"Newest first, {LIST_PAGE_SIZE} a page; each page says which contracts it shows (e.g. 1–20 of 57), "
        "and its More button shows the next page. Only the contracts you may read. " + _NEED_TO_KNOW,
    ),
    Command(
        "assign",
        "manager",
        "Assign reviewers; they are mentioned in the contract's thread.",
        (
            _REF,
            Positional("users", Kind.USERS, "@user…", "one or more reviewers, as @mentions", variadic=True),
        ),
    ),
    Command(
        "answer",
        "reviewer",
        "Answer a due-diligence question (the same as pressing its button).",
        (
            _REF,
            Positional("qid", Kind.QID, "QID", "the question's ID, e.g. CI-4: " + ", ".join(QUESTION_IDS)),
            Positional("answer", Kind.CHOICE, "|".join(ANSWER_VALUES), "the answer", choices=ANSWER_VALUES),
        ),
        (Option("note", Kind.LONG_TEXT, "evidence link or reasoning", max_len=LONG_TEXT_MAX),),
    ),
    Command("stopwork", "manager", "Record that a stop-work order is in effect.", (_REF,), (_reason(), _ON)),
    Command("resume", "manager", "Lift the stop-work order.", (_REF,), (_reason(), _ON)),
    Command(
        "stopwork-extend",
        "manager",
        "Record a stop-work order extended by agreement past its 90 days (FAR 52.242-15).",
        (_REF,),
        (
            Option(
                "until",
                Kind.UNTIL,
                "the order's new last day, YYYY-MM-DD (after its current lapse date)",
                required=True,
            ),
            _reason("the agreement: who agreed, and why"),
        ),
        note="A stop-work order lapses 90 days after it was issued unless extended; managers are reminded 60, 80 "
        "and 90 days after it (or as long before the extension's end). After it lapses the contractor may resume "
        "work, but the bot keeps treating the order as blocking operational use until `resume` (or an extension) "
        "is recorded; the executive order's own conditions are unaffected.",
    ),
    Command(
        "vendor event",
        "manager",
        "Record dated new information about a vendor; a §2(j) review opens on the contracts it concerns.",
        (_VENDOR,),
        (
            Option(
                "kind",
                Kind.CHOICE,
                "list (a screening list), ownership, report (a public report), dni (a DNI finding)",
                required=True,
                choices=("list", "ownership", "report", "dni"),
            ),
            Option("on", Kind.DATE, "the day of the information (default today; not in the future)"),
            Option(
                "note",
                Kind.LONG_TEXT,
                "what is new, in a sentence or two",
                required=True,
                max_len=LONG_TEXT_MAX,
            ),
            Option("source", Kind.TEXT, "where it was published or who reported it", max_len=LONG_TEXT_MAX),
        ),
        note="A §2(j) review opens on every open contract of the vendor, its parent, its affiliates and the vendors "
        "it owns: shown in `show`, listed in the digest, and reminded to the officials (and in the thread) now and "
        "every 5 business days until an official records `redetermine` or `determine`.",
    ),
    Command(
        "determine",
        "official",
        "Record the §2(a) determination.",
        (_REF, Positional("outcome", Kind.CHOICE, "|".join(OUTCOMES), "the determination", choices=OUTCOMES)),
        (_reason("why; a not-risky determination with red flags must address them"), _ON),
        note="not-risky needs every CI/IU question answered; out-of-scope needs SCOPE-1 = no.",
    ),
    Command(
        "certify",
        "official",
        "Record the §2(f) certification by a relevant official.",
        (_REF,),
        (_OFFICIAL, _ON),
    ),
    Command(
        "notify",
        "manager",
        "Record the §2(g) notice to the APNSA; the 7-day waiting period starts.",
        (_REF,),
        (_ON,),
    ),
    Command(
        "clear",
        "manager",
        "Record that the APNSA needs no further process; the waiting period ends early.",
        (_REF,),
        (_ON,),
    ),
    Command(
        "waiver",
        "official",
        "Record a §2(m) waiver of a prohibition (at most one year).",
        (_REF,),
        (
            _OFFICIAL,
            Option(
                "until", Kind.UNTIL, "the day the waiver ends, YYYY-MM-DD (after its date)", required=True
            ),
            _reason("why the waiver is issued, in a sentence or two"),
            Option(
                "circumstances",
                Kind.LONG_TEXT,
                "§2(m): the extraordinary circumstances that justify the waiver (the waiver notice cites them)",
                max_len=LONG_TEXT_MAX,
            ),
            Option(
                "alternatives",
                Kind.LONG_TEXT,
                "§2(m): why no feasible alternative exists (the waiver notice cites it)",
                max_len=LONG_TEXT_MAX,
            ),
            _ON,
        ),
    ),
    Command(
        "waiver-report",
        "official",
        "Record that the 72-hour report of a waiver (or its revocation) was sent.",
        (_REF,),
        (_ON,),
    ),
    Command("revoke-waiver", "official", "Revoke the waiver.", (_REF,), (_reason(), _ON)),
    Command(
        "close", "manager", "Close the contract out (completed or terminated).", (_REF,), (_reason(), _ON)
    ),
    Command(
        "reopen",
        "manager",
        "Undo a close made by mistake: the contract is back as it was before the close.",
        (_REF,),
        (_reason("why the close was a mistake"),),
    ),
    Command(
        "restrict",
        "manager",
        "Only its filer, reviewers, managers, officials and admins may read it.",
        (_REF,),
        note="Every read of a restricted contract (`show`, `audit`, `list`, App Home, export) is in its audit log.",
    ),
    Command(
        "unrestrict",
        "manager",
        "Undo `restrict`.",
        (_REF,),
    ),
    Command(
        "redetermine",
        "official",
        "§2(j): new information; the answers reopen for reviewers until the next `determine`.",
        (_REF,),
        (_reason("the new information"), _ON),
        note="The record keeps every version of the answers; the next `determine` voids certification and notice.",
    ),
    Command(
        "audit",
        ANYONE,
        "The contract's timeline: every event with actor and time.",
        (_REF,),
        (_page("newest entries"),),
        note=f"{AUDIT_PAGE_SIZE} entries a page, each page in the order things happened. Page 1 holds the newest "
        "entries, page 2 the ones before them, and the last page begins with the filing. Each page says which "
        "entries it shows (e.g. 363–402 of 402) and which page holds the first; its More button shows the page "
        "before. " + _NEED_TO_KNOW,
    ),
    Command(
        "timeline",
        ANYONE,
        "A picture of the contract's clocks, sent to you privately.",
        (_REF,),
        note="One lane per clock: award and period of performance, stop-work orders, determination and "
        "certification, the APNSA notice and its 7-day waiting period, waivers and their 72-hour reports, the §4(b) "
        "notice; the dashed line is today. " + _NEED_TO_KNOW,
    ),
    Command(
        "admin grant",
        "admin",
        "Give a user a role.",
        (
            Positional("user", Kind.USER, "@user", "the user, as an @mention"),
            Positional("role", Kind.CHOICE, "role", "one of: " + ", ".join(ROLES), choices=ROLES),
        ),
    ),
    Command(
        "admin revoke",
        "admin",
        "Take a role away from a user.",
        (
            Positional("user", Kind.USER, "@user", "the user, as an @mention"),
            Positional("role", Kind.CHOICE, "role", "one of: " + ", ".join(ROLES), choices=ROLES),
        ),
    ),
    Command("admin roles", "admin", "List who holds which role."),
    Command(
        "admin set",
        "admin",
        "Change a runtime setting.",
        (
            Positional("key", Kind.SETTING, "KEY", "one of: " + ", ".join(SETTINGS)),
            Positional(
                "value", Kind.SETTING_VALUE, "VALUE", "the new value, typed by the setting (see below)"
            ),
        ),
        note="`KEY=VALUE` works too; on/off settings also take yes/no and true/false.",
    ),
    Command("admin settings", "admin", "Show the runtime settings."),
    Command(
        "admin export",
        "admin",
        "Export every contract with its answers and milestones (managers too).",
        (
            Positional(
                "format",
                Kind.CHOICE,
                "csv|json",
                "file format (default csv)",
                False,
                EXPORT_FORMATS,
                default="csv",
            ),
        ),
        also=("manager",),
    ),
    Command(
        "report",
        "manager",
        "The §4(d) annual report, as a Word file sent to you privately.",
        (
            Positional(
                "what",
                Kind.CHOICE,
                "annual",
                "which report: annual (§4(d); the only one the order asks of every agency each year)",
                choices=("annual",),
            ),
        ),
        (
            Option(
                "year",
                Kind.YEAR,
                "the year the report is due, e.g. 2025 for 28 March 2024 to 27 March 2025 (default: the report due "
                "next)",
            ),
        ),
        note="EO 14093 §4(d): (i) current operational uses and why each is not risky, (ii) uses ended in the past "
        "year as risky and how, (iii) every purchase in the past year and whether it was for operational use; "
        "closed contracts included, with each contract's clocks. The reporting year ends on `annual_report_due` "
        "(27 March unless an admin set another day).",
        also=("admin",),
    ),
    Command(
        "draft",
        "manager",
        "Draft one of the order's notices from the record, as a Word file sent to you privately.",
        (_REF, _NOTICE_KIND),
        note="The draft lists at its top what the record still lacks for that notice. " + _NEED_TO_KNOW,
        also=("official",),
    ),
    Command(
        "sent",
        "manager",
        "Record that a notice went out, with the fingerprint (SHA-256) of its last draft.",
        (_REF, _NOTICE_KIND),
        (
            Option(
                "ref", Kind.TEXT, "your reference for what was sent, e.g. a letter number", dest="reference"
            ),
            _ON,
        ),
        note="`sent … apnsa` is `notify` (managers) and `sent … waiver` is `waiver-report` (officials); "
        "`sent … excluded` records the §4(b) notice and ends its reminders. Draft it first.",
        also=("official",),
    ),
    Command(
        "vendor show",
        ANYONE,
        "A vendor: its aliases, parent, affiliates, contracts, events and screening results.",
        (_VENDOR,),
        note="The vendor is found by its name or an alias, however written (`Paragon Solutions (US) Inc.`). "
        "Its contracts are listed only when you may read them. " + _NEED_TO_KNOW,
    ),
    Command(
        "vendor alias",
        "manager",
        "Record another name the vendor goes by (filings under it link to the vendor; it is screened too).",
        (_VENDOR,),
        (Option("alias", Kind.TEXT, "the other name", required=True),),
    ),
    Command(
        "vendor affiliate",
        "manager",
        "Record a vendor that furnishes this one's spyware (§5(h): resells, brokers, rebrands it, or is affiliated).",
        (_VENDOR,),
        (
            Option("other", Kind.TEXT, "the other vendor (created if it is new)", required=True),
            Option(
                "relation",
                Kind.CHOICE,
                "how the other vendor furnishes it",
                required=True,
                choices=("reseller", "broker", "rebrand", "affiliate"),
            ),
        ),
    ),
    Command(
        "screen",
        "manager",
        "Dispose of a possible screening-list match of the contract's vendor, parent or affiliate.",
        (
            _REF,
            Positional("match", Kind.TEXT, "MATCH-ID", "the match, as `show CR-n` lists it (e.g. M-3)"),
            Positional(
                "decision",
                Kind.CHOICE,
                "match|no-match",
                "match: the vendor is the listed party; no-match: it is not",
                choices=("match", "no-match"),
            ),
        ),
        (_reason("how you decided (the identifiers compared, the source checked)"),),
    ),
    Command(
        "help",
        ANYONE,
        "How to use every subcommand, or one.",
        (Positional("subcommand", Kind.TOPIC, "subcommand", "a subcommand's name", False, variadic=True),),
    ),
)

COMMANDS: dict[str, Command] = {c.name: c for c in _COMMAND_LIST}
_TOP_LEVEL = tuple(dict.fromkeys(name.split()[0] for name in COMMANDS))
# the words that name a group of actions (`admin set`, `vendor show`)
GROUPS = _GROUPS = tuple(dict.fromkeys(name.split()[0] for name in COMMANDS if " " in name))
_GROUP_HEADINGS = {
    "admin": "bot administration (role `admin`)",
    "vendor": "vendors, their names and relations",
}


def _group_actions(group: str) -> tuple[str, ...]:
    """The actions of a group, e.g. ("grant", "revoke", …) for `admin`."""
    return tuple(name.split()[1] for name in COMMANDS if name.startswith(f"{group} "))


def _group_usage(group: str) -> str:
    """The usage of a group, e.g. `/contract admin grant|revoke|… …`."""
    return f"/contract {group} {'|'.join(_group_actions(group))} …"


_ADMIN_ACTIONS = _group_actions("admin")
_ADMIN_USAGE = _group_usage("admin")


def usage(name: str) -> str:
    """The correct form of a subcommand (or of a group: `admin`, `vendor`); raises KeyError for an unknown name."""
    if name in _GROUPS:
        return _group_usage(name)
    return COMMANDS[name].usage


# --- the parsed result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCommand:
    """A checked `/contract` invocation: typed values only; existence, roles and state are checked later."""

    name: str
    role: str
    ref: int | None = None
    args: dict[str, object] = field(default_factory=dict)
    on: date | None = None  # a dated action's effective date: `on=` when typed (also in args), else today

    @property
    def reference(self) -> str | None:
        """The contract reference as written, `CR-n`, or None."""
        return None if self.ref is None else f"CR-{self.ref}"

    @property
    def opens_modal(self) -> bool:
        """True for a bare `/contract file`, which opens the filing modal instead of filing."""
        return self.name == "file" and not self.args

    @property
    def contract(self) -> int:
        """The contract's number, for a command that names one; raises ValueError for one that does not."""
        if self.ref is None:
            raise ValueError(f"`{self.name}` names no contract")
        return self.ref

    def get(self, key: str, as_type: type[T]) -> T | None:
        """The typed value of an argument, None when it was left out.

        Raises KeyError when the command's table declares no such argument, and TypeError when the table's
        kind for it does not give ``as_type`` (so a consumer cannot drift from the table unnoticed).
        """
        kind = _argument_kind(self.name, key)
        if not any(issubclass(t, as_type) for t in _KIND_TYPES[kind]):
            raise TypeError(f"`{self.name}` argument `{key}` is {kind.value}, not {as_type.__name__}")
        value = self.args.get(key)
        if value is not None and not isinstance(value, as_type):  # pragma: no cover - the parser typed it
            raise TypeError(f"`{self.name}` argument `{key}` holds {type(value).__name__}")
        return value

    def require(self, key: str, as_type: type[T]) -> T:
        """The typed value of an argument the command requires (see `get`); raises KeyError when absent."""
        value = self.get(key, as_type)
        if value is None:
            raise KeyError(f"`{self.name}` was parsed without `{key}`")
        return value


T = TypeVar("T")

# The Python types each kind of argument is parsed into (ParsedCommand.get checks requests against them).
_KIND_TYPES: dict[Kind, tuple[type, ...]] = {
    Kind.TEXT: (str,),
    Kind.LONG_TEXT: (str,),
    Kind.DATE: (date,),
    Kind.UNTIL: (date,),
    Kind.MONEY: (int,),
    Kind.CHOICE: (str,),
    Kind.YES_NO: (bool,),
    Kind.OFFICIAL: (str,),
    Kind.REF: (int,),
    Kind.QID: (str,),
    Kind.USER: (str,),
    Kind.USERS: (tuple,),
    Kind.TOPIC: (str,),
    Kind.SETTING: (str,),
    Kind.SETTING_VALUE: (str, int, bool),
    Kind.PAGE: (int,),
    Kind.YEAR: (int,),
}


def _argument_kind(name: str, key: str) -> Kind:
    """The kind the command table declares for one argument of a command; raises KeyError."""
    command = COMMANDS[name]
    for p in command.positionals:
        if p.dest == key:
            return p.kind
    for o in command.options:
        if o.arg_name == key:
            return o.kind
    raise KeyError(f"`{name}` has no argument `{key}` in the command table")


# --- tokenizer ------------------------------------------------------------------------------------------

# Straight quotes and the typographic ones Slack clients and phones substitute. Any of them opens and
# any closes, because "smart punctuation" often types ” (a closing quote) right after `=`.
# Single quotes are deliberately not quotes: apostrophes in names (O’Brien, Director’s Office) are common.
_QUOTES = frozenset('"\u201c\u201d\u201e\u201f')
# Slack's own formatted tokens: <@U…|name>, <#C…|name>, <!here>, <https://…|label>, <mailto:…>.
_ANGLE_TOKEN_START = re.compile(r"<(?:[@#!]|[A-Za-z][A-Za-z0-9+.-]*:)")


_QUOTE_CLASS = "".join(sorted(_QUOTES))
# Runs the tokenizer copies as they are, so a long value costs one regex step rather than one per character.
_PLAIN_RUN = re.compile(rf"[^\s{_QUOTE_CLASS}<\\]+")
_QUOTED_RUN = re.compile(rf"[^{_QUOTE_CLASS}\\]+")
_PLAIN_RUN_PAST_LAST_CLOSE = re.compile(rf"[^\s{_QUOTE_CLASS}\\]+")  # no `>` left: `<` is ordinary
_BACKSLASHES = re.compile(r"\\+")


def tokenize(text: str) -> list[str]:
    """Split on whitespace; "…"/“…” quote (quotes removed) and <@U1|a b> stay whole; raises InputError.

    A backslash before a quote makes it an ordinary character (`reason="he said \\"no\\""`), and a pair
    of backslashes before a quote is one backslash (`note="C:\\dir\\\\"`); every other backslash is kept
    as typed, so paths such as `\\\\server\\share` survive. One pass over the text: linear in its length.
    """
    tokens: list[str] = []
    buf: list[str] = []
    in_token = False
    quote_start = -1  # where the open quote is, while inside one
    no_close_from = len(text) + 1  # a search for `>` from here on found none: never search again
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            run = _BACKSLASHES.match(text, i)
            assert run is not None
            j = run.end()
            count = j - i
            if j < n and text[j] in _QUOTES:
                buf.append("\\" * (count // 2))
                if count % 2:  # an escaped quote: the quote is part of the value
                    buf.append(text[j])
                    j += 1
            else:
                buf.append(text[i:j])
            in_token = True
            i = j
            continue
        if quote_start >= 0:
            if ch in _QUOTES:
                quote_start = -1
                i += 1
                continue
            run = _QUOTED_RUN.match(text, i)
            assert run is not None
            buf.append(run.group(0))
            i = run.end()
            continue
        if ch.isspace():
            if in_token:
                tokens.append("".join(buf))
                buf, in_token = [], False
            i += 1
            continue
        if ch in _QUOTES:
            quote_start = i
            in_token = True
            i += 1
            continue
        if ch == "<" and i + 1 < no_close_from and _ANGLE_TOKEN_START.match(text, i):
            end = text.find(">", i + 1)
            if end != -1:
                buf.append(text[i : end + 1])
                in_token = True
                i = end + 1
                continue
            no_close_from = i + 1
        run = (_PLAIN_RUN if i + 1 < no_close_from else _PLAIN_RUN_PAST_LAST_CLOSE).match(text, i)
        buf.append(run.group(0) if run else ch)
        in_token = True
        i = run.end() if run else i + 1
    if quote_start >= 0:
        raise InputError(
            f"Unbalanced quote: the value starting `{_shown(text[quote_start:])}` is never closed. "
            'Put the value between two quotes: key="two words" (a quote inside a value is written \\").'
        )
    if in_token:
        tokens.append("".join(buf))
    return tokens


# --- parser ---------------------------------------------------------------------------------------------

_KEY_VALUE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)=(.*)", re.DOTALL)
_REF_RE = re.compile(r"CR-?0*([1-9][0-9]{0,8})", re.IGNORECASE)
# any section's letters: a later question set may add a section (its IDs are checked against every set)
_QID_RE = re.compile(r"([A-Z]{1,12})[-_ ]?([0-9]{1,3})", re.IGNORECASE)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONEY_RE = re.compile(r"(?P<dollars>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<cents>[0-9]{1,2}))?")
_SHOWN_MAX = 40


def _shown(s: str) -> str:
    """User input made safe to quote back inside a code span: shortened, no backticks, mrkdwn-escaped."""
    if find_classification_marking(s):  # never post marked text back, not even in a refusal
        return "(text with a classification marking, not repeated)"
    s = s if len(s) <= _SHOWN_MAX else s[: _SHOWN_MAX - 1] + "…"
    s = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in s)
    return escape_mrkdwn(s.replace("`", "'"))


def _closest(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The most similar choice, for a "did you mean" hint."""
    matches = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """` Did you mean `x`?` or nothing."""
    best = _closest(word, choices)
    return f" Did you mean `{best}`?" if best else ""


def _parse_ref(raw: str) -> int:
    """`CR-12` (any case) -> 12; raises InputError."""
    m = _REF_RE.fullmatch(raw.strip())
    if not m:
        raise InputError(
            f"`{_shown(raw)}` is not a contract reference: write CR- and the contract's number, e.g. CR-12."
        )
    return int(m.group(1))


def _parse_qid(raw: str) -> str:
    """`ci-4` -> `CI-4`; raises InputError for anything not in QUESTION_IDS."""
    m = _QID_RE.fullmatch(raw.strip())
    qid = f"{m.group(1).upper()}-{int(m.group(2))}" if m else ""
    if qid not in questions.known_ids():
        raise InputError(
            f"`{_shown(raw)}` is not a question ID. Question IDs are {', '.join(QUESTION_IDS)}; "
            "each question in the thread shows its ID."
        )
    return qid


def _parse_date(raw: str, label: str) -> date:
    """A strict YYYY-MM-DD date; raises InputError."""
    raw = raw.strip()
    if not _DATE_RE.fullmatch(raw):
        raise InputError(
            f"`{label}={_shown(raw)}` is not a date: write dates as YYYY-MM-DD, e.g. 2024-09-27."
        )
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"`{label}={_shown(raw)}` is not a real calendar date: write dates as YYYY-MM-DD, "
            "e.g. 2024-09-27."
        ) from None


def _parse_past_date(raw: str, label: str, today: date) -> date:
    """A YYYY-MM-DD date that is not after today; raises InputError."""
    d = _parse_date(raw, label)
    if d > today:
        raise InputError(
            f"`{label}={d.isoformat()}` is in the future (today is {today.isoformat()}): "
            "dates in the future are refused. Record it on or after the day it happens."
        )
    return d


def _parse_money(raw: str, label: str) -> int:
    """A USD amount (`2,000,000`, `$2000000.50`, …) as integer cents; raises InputError."""
    s = raw.strip().replace(" ", "")
    s = s.removeprefix("USD").removesuffix("USD").removeprefix("US")
    if s.startswith("-") or s.startswith("$-") or s.startswith("(") or s.startswith("−"):
        raise InputError(f"`{label}={_shown(raw)}` is negative: a contract value is zero or more US dollars.")
    m = _MONEY_RE.fullmatch(s.removeprefix("$"))
    if not m:
        raise InputError(
            f"`{label}={_shown(raw)}` is not an amount in US dollars: write it like 2000000, 2,000,000, "
            "$2,000,000 or 2000000.50."
        )
    dollars = int(m.group("dollars").replace(",", ""))
    if dollars > MAX_VALUE_DOLLARS:
        raise InputError(
            f"`{label}={_shown(raw)}` is not a plausible contract value: the limit is "
            f"${MAX_VALUE_DOLLARS:,}. Check the number of digits."
        )
    cents = int((m.group("cents") or "0").ljust(2, "0"))
    return dollars * 100 + cents


# Every way of writing yes or no that people type; accepted wherever a yes/no (or on/off) is taken.
BOOLEAN_WORDS: dict[str, bool] = {
    "yes": True,
    "true": True,
    "on": True,
    "no": False,
    "false": False,
    "off": False,
}


def _parse_bool(raw: str, label: str, *, on_off: bool = False) -> bool:
    """yes/no, true/false or on/off, any case; raises InputError."""
    value = raw.strip().lower()
    if value in BOOLEAN_WORDS:
        return BOOLEAN_WORDS[value]
    form = (
        "on or off (yes/no and true/false work too)"
        if on_off
        else "yes or no (true/false and on/off work too)"
    )
    raise InputError(
        f"`{label}` must be {form}, not `{_shown(raw)}`." + _did_you_mean(value, tuple(BOOLEAN_WORDS))
    )


def _parse_choice(raw: str, label: str, choices: tuple[str, ...]) -> str:
    """One of the choices, case-insensitive (`_` read as `-`; true/false for yes/no); raises InputError."""
    value = raw.strip().lower().replace("_", "-")
    if value in choices:
        return value
    if value in BOOLEAN_WORDS and "yes" in choices and "no" in choices:
        return "yes" if BOOLEAN_WORDS[value] else "no"
    raise InputError(
        f"`{label}` must be one of {', '.join(choices)}, not `{_shown(raw)}`." + _did_you_mean(value, choices)
    )


def _parse_page(raw: str, label: str) -> int:
    """A page number: a whole number from 1; raises InputError."""
    value = raw.strip()
    if not value:
        raise InputError(f"`{label}=` needs a page number, a whole number from 1 (e.g. {label}=2).")
    if not re.fullmatch(r"[0-9]{1,9}", value) or int(value) < 1:  # a page past the last: the service says so
        raise InputError(
            f"`{label}=` must be a page number, a whole number from 1 (e.g. {label}=2), not `{_shown(raw)}`."
        )
    return int(value)


def _parse_year(raw: str, label: str) -> int:
    """A year, four digits; raises InputError (which years have a report is the service's to say)."""
    value = raw.strip()
    if not re.fullmatch(r"[0-9]{4}", value):
        raise InputError(f"`{label}=` must be a year, four digits (e.g. {label}=2025), not `{_shown(raw)}`.")
    return int(value)


def _parse_official(raw: str) -> str:
    """A relevant official's canonical title from a common form (SecDef, DAG, D/CIA…); raises InputError."""
    title = OFFICIAL_ALIASES.get(_official_key(raw))
    if title is None:
        raise InputError(
            f"`official={_shown(raw)}` is not a relevant official under EO 14093 §5(k). Use one of: "
            + "; ".join(RELEVANT_OFFICIALS)
            + " (short forms such as SecDef, AG, DAG, DNI, D/CIA, D/NSA work too)."
        )
    return title


_LIST_PUNCTUATION = re.compile(r"[,;]|^(?:and|&|\+)$", re.IGNORECASE)


def _parse_user(raw: str) -> str:
    """The user ID of an @mention; raises InputError."""
    user_id = parse_user_mention(raw)
    if user_id is None:
        if _LIST_PUNCTUATION.search(raw.strip()) and ("<@" in raw or len(raw.strip()) <= 3):
            # `@rae, @mel`: the mentions are right, the comma between them is not
            raise InputError(
                "Separate mentions with spaces, not commas or “and” (`@first @second`), "
                "each person picked from Slack's list."
            )
        raise InputError(
            f"`{_shown(raw)}` is not a user mention: @mention the person so Slack picks them from the list."
        )
    return user_id


def _parse_topic(words: list[str]) -> str | None:
    """The subcommand `help` is asked about, or None for the overview; raises InputError."""
    if not words:
        return None
    topic = " ".join(w.lower() for w in words).strip()
    if topic in COMMANDS or topic in _GROUPS:
        return topic
    raise InputError(
        f"There is no subcommand `{_shown(topic)}`."
        + _did_you_mean(topic, [*COMMANDS, *_GROUPS])
        + " `/contract help` lists them all."
    )


def _parse_setting_value(raw: str, setting: Setting) -> object:
    """A setting's value, typed by the setting: channel ID, int in range, or on/off -> bool."""
    raw = check_free_text(raw, field=setting.key, max_len=SETTING_VALUE_MAX, multiline=False)
    if setting.kind == "channel":
        channel = parse_channel_ref(raw)
        if channel is None:
            raise InputError(f"`{setting.key}` needs a channel: type # and pick it, not `{_shown(raw)}`.")
        return channel
    if setting.kind == "int":
        assert setting.minimum is not None and setting.maximum is not None
        if not re.fullmatch(r"[0-9]{1,6}", raw) or not setting.minimum <= int(raw) <= setting.maximum:
            raise InputError(
                f"`{setting.key}` must be a whole number from {setting.minimum} to {setting.maximum}, "
                f"not `{_shown(raw)}`."
            )
        return int(raw)
    if setting.kind == "mm_dd":
        day = mm_dd(raw)
        if day is None:
            raise InputError(
                f"`{setting.key}` must be a day of the year as MM-DD, e.g. 03-27 (29 February is not in every "
                f"year), not `{_shown(raw)}`."
            )
        return day
    return _parse_bool(raw, setting.key, on_off=True)


def _convert(
    kind: Kind, raw: str, label: str, *, today: date, max_len: int = NAME_MAX, choices: tuple[str, ...] = ()
) -> object:
    """A raw string checked and typed according to its kind; raises InputError."""
    match kind:
        case Kind.TEXT:
            return check_free_text(raw, field=label, max_len=max_len, multiline=False)
        case Kind.LONG_TEXT:
            return check_free_text(raw, field=label, max_len=max_len)
        case Kind.DATE:
            return _parse_past_date(raw, label, today)
        case Kind.UNTIL:
            return _parse_date(raw, label)
        case Kind.MONEY:
            return _parse_money(raw, label)
        case Kind.CHOICE:
            return _parse_choice(raw, label, choices)
        case Kind.YES_NO:
            return _parse_bool(raw, label)
        case Kind.OFFICIAL:
            return _parse_official(raw)
        case Kind.REF:
            return _parse_ref(raw)
        case Kind.QID:
            return _parse_qid(raw)
        case Kind.USER:
            return _parse_user(raw)
        case Kind.PAGE:
            return _parse_page(raw, label)
        case Kind.YEAR:
            return _parse_year(raw, label)
        case Kind.SETTING:
            key = raw.strip().lower().replace("-", "_")
            if key not in SETTINGS:
                raise InputError(
                    f"There is no setting `{_shown(raw)}`. Settings are {', '.join(SETTINGS)}."
                    + _did_you_mean(key, tuple(SETTINGS))
                )
            return key
    raise AssertionError(f"kind {kind} is not converted one token at a time")  # pragma: no cover


def _find_command(tokens: list[str]) -> tuple[Command, list[str]]:
    """The command named by the first token(s) and the remaining tokens; raises InputError."""
    word = tokens[0].lower()
    if word in _GROUPS:
        actions = _group_actions(word)
        if len(tokens) < 2:
            raise InputError(f"`{word}` needs an action: {', '.join(actions)}.", usage=_group_usage(word))
        action = tokens[1].lower()
        command = COMMANDS.get(f"{word} {action}")
        if command is None:
            hint = _closest(action, actions)
            raise InputError(
                f"Unknown {word} action `{_shown(tokens[1])}`. Actions are {', '.join(actions)}."
                + (f" Did you mean `{word} {hint}`?" if hint else ""),
                usage=usage(f"{word} {hint}") if hint else _group_usage(word),
            )
        return command, tokens[2:]
    command = COMMANDS.get(word)
    if command is None:
        hint = _closest(word, _TOP_LEVEL)
        raise InputError(
            f"Unknown subcommand `{_shown(tokens[0])}`."
            + (f" Did you mean `{hint}`?" if hint else "")
            + " `/contract help` lists them all.",
            usage=usage(hint) if hint else usage("help"),
        )
    return command, tokens[1:]


def _split(command: Command, tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """Options (key -> raw value) and positional tokens; raises InputError for an unknown or repeated key."""
    options: dict[str, str] = {}
    positionals: list[str] = []
    takes_setting = any(p.kind is Kind.SETTING for p in command.positionals)
    for token in tokens:
        m = _KEY_VALUE.fullmatch(token)
        if not m:
            positionals.append(token)
            continue
        key = m.group(1).lower().replace("-", "_")
        if takes_setting and command.option(key) is None:  # `admin set key=value` is `admin set key value`
            positionals += [m.group(1), m.group(2)]
            continue
        if command.option(key) is None:
            allowed = [o.key for o in command.options]
            if not allowed:
                raise InputError(
                    f"`{command.name}` takes no key=value options, so `{_shown(key)}=` is not understood."
                )
            raise InputError(
                f"Unknown key `{_shown(key)}=` for `{command.name}`. Allowed keys: "
                + ", ".join(f"{k}=" for k in allowed)
                + "."
                + _did_you_mean(key, allowed)
            )
        if key in options:
            raise InputError(f"`{key}=` is given twice; give each key once.")
        options[key] = m.group(2)
    return options, positionals


def _stray(command: Command, token: str) -> InputError:
    """The error for a token no positional slot takes."""
    text = f"Unexpected `{_shown(token)}`: `{command.name}` does not take it."
    opt = command.option(token.strip().lower().replace("-", "_"))
    if opt is not None:
        text += f" Did you mean `{opt.placeholder}`?"
    elif any(o.kind in (Kind.TEXT, Kind.LONG_TEXT) for o in command.options):
        text += ' If it is part of a value with spaces, put the value in quotes: key="two words".'
    return InputError(text)


def _parse_positionals(
    command: Command, tokens: list[str], today: date
) -> tuple[int | None, dict[str, object]]:
    """The contract reference and typed positional values; raises InputError (missing, bad or stray)."""
    ref: int | None = None
    values: dict[str, object] = {}
    queue = list(tokens)
    for spec in command.positionals:
        if spec.variadic:
            taken, queue = queue, []
            if spec.kind is Kind.TOPIC:
                values[spec.dest] = _parse_topic(taken)
                continue
            # a name of several words, quoted or not (`vendor show Paragon Solutions`)
            if spec.kind is Kind.TEXT:
                if not taken:
                    raise InputError(f"`{command.name}` is missing `{spec.placeholder}`: {spec.help}.")
                values[spec.dest] = _convert(Kind.TEXT, " ".join(taken), spec.dest, today=today)
                continue
            if not taken and spec.required:
                raise InputError(f"`{command.name}` needs {spec.placeholder}: {spec.help}.")
            values[spec.dest] = tuple(dict.fromkeys(_parse_user(t) for t in taken))
            continue
        if not queue:
            if spec.required:
                raise InputError(f"`{command.name}` is missing `{spec.placeholder}`: {spec.help}.")
            values[spec.dest] = spec.default
            continue
        raw = queue.pop(0)
        if spec.kind is Kind.SETTING_VALUE:
            values[spec.dest] = _parse_setting_value(raw, SETTINGS[str(values["key"])])
            continue
        value = _convert(spec.kind, raw, spec.dest, today=today, choices=spec.choices)
        if spec.kind is Kind.REF:
            ref = int(str(value))
        else:
            values[spec.dest] = value
    if queue:
        raise _stray(command, queue[0])
    return ref, values


def _parse_options(command: Command, raw: dict[str, str], today: date) -> dict[str, object]:
    """Typed option values, required ones present; raises InputError."""
    values: dict[str, object] = {}
    for opt in command.options:
        if opt.key in raw:
            values[opt.arg_name] = _convert(
                opt.kind, raw[opt.key], opt.key, today=today, max_len=opt.max_len, choices=opt.choices
            )
    missing = [o for o in command.options if o.required and o.key not in raw]
    if missing:
        names = [f"`{o.placeholder}` ({o.help})" for o in missing]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        raise InputError(f"`{command.name}` is missing {listed}.")
    return values


def _check_until(values: dict[str, object], on: date, today: date) -> None:
    """A waiver's `until` must come after its date and must not be past; raises InputError."""
    until = values.get("until")
    if not isinstance(until, date):
        return
    if until <= on:
        raise InputError(
            f"`until={until.isoformat()}` must be after the waiver's date ({on.isoformat()}): "
            "a waiver runs from its date to a later day."
        )
    if until < today:
        raise InputError(
            f"`until={until.isoformat()}` is in the past (today is {today.isoformat()}): "
            "a waiver that has already ended cannot be recorded as issued."
        )


def _usage_for_text(text: str) -> str:
    """The usage of the subcommand the text seems to start with, or the help usage."""
    words = text.split()
    if words and words[0].lower() in _GROUPS:
        name = " ".join(w.lower() for w in words[:2])
        return COMMANDS[name].usage if name in COMMANDS else _group_usage(words[0].lower())
    if words and words[0].lower() in COMMANDS:
        return COMMANDS[words[0].lower()].usage
    return usage("help")


def parse_command(text: str, *, today: date) -> ParsedCommand:
    """Parse `/contract` text into typed values (empty is `help`); raises InputError naming the problem."""
    if len(text) > COMMAND_TEXT_MAX:  # checked before anything else reads it: the cost stays bounded
        raise InputError(
            f"The command is too long: {len(text):,} characters, and Slack sends at most {COMMAND_TEXT_MAX:,}. "
            f"No command needs more than a few thousand (a reason or note holds up to {LONG_TEXT_MAX:,}): "
            "shorten it, or link to the document instead.",
            usage=_usage_for_text(text[:100]),
        )
    if not text.strip():
        return ParsedCommand("help", ANYONE, None, {"subcommand": None})
    try:
        tokens = tokenize(text)
    except InputError as e:
        raise InputError(e.message, usage=_usage_for_text(text)) from None
    if not tokens or not tokens[0].strip():
        raise InputError("The subcommand is empty. `/contract help` lists them all.", usage=usage("help"))
    command, rest = _find_command(tokens)
    if command.bare_ok and not rest:
        return ParsedCommand(command.name, command.role, None, {})
    try:
        raw_options, positionals = _split(command, rest)
        ref, values = _parse_positionals(command, positionals, today)
        values.update(_parse_options(command, raw_options, today))
        on: date | None = None
        if command.dated:
            typed_on = values.get("on")
            on = typed_on if isinstance(typed_on, date) else today
            _check_until(values, on, today)
    except InputError as e:
        raise InputError(e.message, usage=command.usage) from None
    return ParsedCommand(command.name, command.role, ref, values, on)


# --- help -----------------------------------------------------------------------------------------------

_ROLE_HEADINGS = {
    ANYONE: "Anyone",
    "reviewer": "Reviewers (role `reviewer`)",
    "manager": "Compliance managers (role `manager`)",
    "official": "Relevant officials (role `official`)",
    "admin": "Bot administrators (role `admin`)",
}
_SYNOPSIS_MAX = 90


def _synopsis(command: Command) -> str:
    """The usage, shortened to positionals and required keys when the full form is long."""
    if len(command.usage) <= _SYNOPSIS_MAX:
        return command.usage
    parts = [f"/contract {command.name}", *(p.placeholder for p in command.positionals if p.required)]
    parts += [o.placeholder for o in command.options if o.required]
    return " ".join(parts) + " […]"


def _who(command: Command) -> str:
    """Who may run a command, for help."""
    if command.role == ANYONE:
        return "anyone"
    return " or ".join(f"role `{role}`" for role in (command.role, *command.also))


def _command_help(command: Command) -> str:
    """The help of one subcommand: usage, role, arguments and keys."""
    lines = [
        f"*/contract {command.name}* — {command.summary}",
        f"Usage: `{command.usage}`",
        f"Who: {_who(command)}",
    ]
    if command.note:
        lines.append(command.note)
    if command.positionals:
        lines.append("Arguments:")
        for p in command.positionals:
            state = "required" if p.required else "optional"
            lines.append(f"• `{p.placeholder}` ({state}) — {p.help}")
    if command.options:
        lines.append("Keys:")
        for o in command.options:
            state = "required" if o.required else "optional"
            lines.append(f"• `{o.placeholder}` ({state}) — {o.help}")
    if command.name == "admin set":
        lines.append("Settings:")
        for s in SETTINGS.values():
            lines.append(f"• `{s.key}` = `{s.value_form}` — {s.description}")
    return escape_mrkdwn("\n".join(lines))


def help_text(subcommand: str | None = None) -> str:
    """Help in mrkdwn from the command table: the overview by role, or one subcommand; raises InputError."""
    if subcommand is not None:
        topic = _parse_topic(subcommand.split())
        if topic in _GROUPS:
            lines = [f"*/contract {topic}* — {_GROUP_HEADINGS.get(topic, topic)}:"]
            lines += [
                f"• `{c.usage}` — {c.summary}" for c in COMMANDS.values() if c.name.startswith(f"{topic} ")
            ]
            example = "admin set" if topic == "admin" else f"{topic} {_group_actions(topic)[0]}"
            lines.append(f"For one action: `/contract help {topic} ACTION`, e.g. `/contract help {example}`.")
            return escape_mrkdwn("\n".join(lines))
        if topic is not None:
            return _command_help(COMMANDS[topic])
    lines = [
        "*contract-bot* — EO 14093 compliance reviews of commercial-spyware contracts.",
        'Arguments are key=value; put values with spaces in quotes (key="two words"), and a quote inside a '
        'value after a backslash (\\"); dates are YYYY-MM-DD; yes/no also takes true/false; '
        "a contract is named CR-n.",
    ]
    for role in COMMAND_ROLES:
        commands = [c for c in COMMANDS.values() if c.role == role]
        if not commands:
            continue
        lines.append("")
        lines.append(f"*{_ROLE_HEADINGS[role]}*")
        lines += [f"• `{_synopsis(c)}` — {c.summary}" for c in commands]
    lines.append("")
    lines.append("For one subcommand: `/contract help <subcommand>`, e.g. `/contract help determine`.")
    return escape_mrkdwn("\n".join(lines))
