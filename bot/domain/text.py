"""Safe user text: mrkdwn escaping, mention parsing, and the free-text gate (length, controls, markings)."""

from __future__ import annotations

import re
import unicodedata

from bot.domain.errors import InputError

__all__ = [
    "CLASSIFIED_REFUSAL",
    "MARKING_REPHRASE",
    "check_free_text",
    "escape_mrkdwn",
    "find_classification_marking",
    "format_user_mention",
    "neutralize",
    "parse_channel_ref",
    "parse_user_mention",
    "quote_lines",
    "quoted",
    "safe_mrkdwn",
    "unescape_slack",
]

CLASSIFIED_REFUSAL = "contract-bot holds references and status, never classified substance"
# How to say the same thing without marking syntax (itself free of markings, so it can be shown anywhere).
MARKING_REPHRASE = (
    "Write about clearances in plain words: “staff must hold TS/SCI clearances” or “a Secret facility "
    "clearance” is fine; a banner (a classification level in capitals, or joined to controls with //) or a "
    "portion mark (a level letter in parentheses) is not. Record only an unclassified reference."
)

# --- escaping -------------------------------------------------------------------------------------------


def escape_mrkdwn(s: str) -> str:
    """Escape Slack's control characters &, <, > (and nothing else) so no mention or link renders live."""
    # NOTE: Slack decodes only these three entities; encoding anything else would show up literally.
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_slack(s: str) -> str:
    """Decode the three entities Slack puts in incoming message and slash-command text (&lt; &gt; &amp;)."""
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_ZWJ = "\u200d"
_BARE_SPECIAL_MENTION = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)


def neutralize(s: str) -> str:
    """Defuse bare @channel/@here/@everyone by putting a zero-width joiner after the @ (display only)."""
    # NOTE: Block Kit mrkdwn text objects run Slack's *automatic parsing* by default (verbatim: false),
    # which may turn a plain "@channel" typed by a user into a real workspace-wide ping. Escaping <, >, &
    # cannot stop that because there is no angle bracket involved; a zero-width joiner breaks the word
    # for the parser while looking identical to a reader. Use on rendering only, never on stored text.
    return _BARE_SPECIAL_MENTION.sub("@" + _ZWJ, s)


def safe_mrkdwn(s: str) -> str:
    """User text made inert for any mrkdwn surface: special mentions defused, then &, <, > escaped."""
    return escape_mrkdwn(neutralize(s))


def quote_lines(escaped: str) -> str:
    """Escaped user text that spans lines, set off as a quote (`>` on each line) on lines of its own, so that none
    of its lines can pass for one of the bot's (a reason holding "\n:white_check_mark: CR-2 certified"); text on
    one line is returned as it is, to be read inline."""
    lines = escaped.splitlines()  # every line break Slack shows: \n, and U+2028/U+2029 too
    if len(lines) <= 1:
        return escaped
    return "\n" + "\n".join(">" + line for line in lines) + "\n"


def quoted(s: str, after: str = "") -> str:
    """User text for a line of the bot's own: escaped, then ``after`` (its punctuation) when it is one line, or set
    off as a quote (quote_lines) with the bot's text going on below it when it spans lines."""
    text = escape_mrkdwn(s)
    return text + after if len(text.splitlines()) <= 1 else quote_lines(text)


# --- mentions and channels ------------------------------------------------------------------------------

_USER_ID = re.compile(r"[UW][A-Z0-9]{1,20}")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,20})(?:\|[^<>]*)?>")
_CHANNEL_REF = re.compile(r"<#([CG][A-Z0-9]{1,20})(?:\|[^<>]*)?>")
# A bare channel ID must look like one (C/G, 8+ upper-case alphanumerics with a digit) so that ordinary
# upper-case words such as "CLOSE" are not taken for channels.
_BARE_CHANNEL_ID = re.compile(r"[CG](?=[A-Z0-9]*[0-9])[A-Z0-9]{7,20}")


def parse_user_mention(token: str) -> str | None:
    """The user ID of a Slack mention token (`<@U123>`, `<@U123|name>`, `<@W123>`), else None."""
    m = _USER_MENTION.fullmatch(token.strip())
    return m.group(1) if m else None


def parse_channel_ref(token: str) -> str | None:
    """The channel ID of `<#C123|name>`, `<#C123>` or a bare channel ID like `C0123ABC`, else None."""
    token = token.strip()
    m = _CHANNEL_REF.fullmatch(token)
    if m:
        return m.group(1)
    return token if _BARE_CHANNEL_ID.fullmatch(token) else None


def format_user_mention(user_id: str) -> str:
    """A real mention built from a Slack user ID (`<@U123>`); raises ValueError for anything not an ID."""
    if not _USER_ID.fullmatch(user_id):
        raise ValueError(f"not a Slack user ID: {user_id!r}")
    return f"<@{user_id}>"


# --- classification markings ----------------------------------------------------------------------------
#
# What is refused is marking *syntax*, not talk about clearances. Contracts for these tools routinely
# require cleared staff, so "staff must hold TS/SCI clearances", "a SECRET facility clearance (DD-254)",
# "Top Secret clearance required" and "(S)upport" are ordinary wording and pass. Refused:
#   - a level or control joined by `//` (SECRET//NOFORN, TS//SCI, S//NF, //REL TO USA), in any case;
#   - portion marks: (TS), (S), (S//NF), (TS/SCI), (C//REL) — "(C)" alone is a copyright sign;
#   - banner words in capitals (TOP SECRET, SECRET, TS/SCI) unless clearance words are next to them;
#   - dissemination controls that are never prose (NOFORN in any case, ORCON and REL TO USA in capitals);
#   - any of these disguised: letters spaced or punctuated apart ("T O P S E C R E T", "S-E-C-R-E-T"),
#     digits or symbols for letters ("T0P 5ECRET"), look-alike or full-width letters, accents, invisible
#     characters. A disguised level word is refused in any case and whatever surrounds it: nobody writes
#     about clearances that way.
# Decided and tested: lower- and mixed-case level words without `//` are prose ("secret sauce",
# "Top Secret program", "the Secret Service"); upper-case SECRET with no clearance word nearby ("the
# SECRET annex") is refused as banner syntax, and the refusal says how to write it instead.

# Invisible characters that could be slipped between letters to split a marking ("TOP\u200bSECRET").
_INVISIBLE = frozenset("\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff")
# Cyrillic and Greek capitals that look like Latin ones ("ЅЕСRЕТ"); NFKD leaves them alone.
_HOMOGLYPHS = str.maketrans(
    "АВСЕНІЈКМОРЅТХУЁΑΒΕΗΙΚΜΝΟΡΤΥΧΖаеорсухѕі",
    "ABCEHIJKMOPSTXYEABEHIKMNOPTYXZaeopcyxsi",
)
# Digits and symbols written for letters inside a word that has letters too ("T0P", "5ECRET", "$ECRET").
_LEET = {"0": "O", "1": "I", "3": "E", "4": "A", "5": "S", "7": "T", "8": "B", "$": "S", "@": "A"}
_MIXED_WORD = re.compile(r"[A-Za-z0-9$@]*[A-Za-z][A-Za-z0-9$@]*")
# Three or more single letters with separators between them: "T O P", "S-E-C-R-E-T", "s.e.c.r.e.t".
_SPACED_LETTERS = re.compile(r"(?<![A-Za-z0-9])[A-Za-z](?:[ .\-_*·•+~]{1,3}[A-Za-z](?![A-Za-z0-9])){2,}")
_SPACED_SEPARATORS = frozenset(" .-_*·•+~")

_LEVEL_SLASHES = re.compile(
    r"(?<![A-Za-z0-9])(?:(?i:TOP[\s_-]?SECRET|SECRET|CONFIDENTIAL|TS)|S|C)\s?/\s?/"  # SECRET//, TS//, S//, C//
)
_SLASHES_CONTROL = re.compile(
    r"(?<![:/])/\s?/\s?(?:(?i:NOFORN|RELIDO|ORCON|IMCON|PROPIN|FVEY|REL\s?TO)\b|(?:NF|SCI|SI|TK|HCS|OC|PR)\b)"
)
_PORTION_MARKS = (
    # (TS) and (S) alone, but not "(S)upport" or "VENDOR(S)"; "(C)" alone is a copyright sign.
    re.compile(r"(?<![A-Za-z0-9])\( ?(?:TS|S) ?\)(?![A-Za-z0-9])"),
    re.compile(r"\( ?(?:TS|S|C) ?/ ?/ ?[A-Z][A-Z0-9 /,-]*\)"),
    re.compile(r"\( ?(?:TS|S|C) ?/ ?(?:NF|SCI|SI|TK|HCS|OC|PR|RELIDO|REL\b[A-Z ,]*)\)"),
)
_CONTROL_WORDS = (re.compile(r"\bnoforn\b", re.IGNORECASE), re.compile(r"\bORCON\b|\bREL TO USA\b"))
# Level words as a banner: refused in capitals (or disguised), unless they sit in talk of clearances.
_BANNER_WORDS = re.compile(r"\b(?:top[\s_-]?secret|secret|ts\s?/\s?sci)\b", re.IGNORECASE)
_NOT_A_BANNER_AFTER = re.compile(r" ?service\b", re.IGNORECASE)  # the (US) Secret Service
_CLEARANCE_WORDS = re.compile(
    r"\b(?:clear(?:ance|ances|ed|ing)?|eligib\w*|access|level|fcl|pcl|polygraph|ssbi|investigations?)\b",
    re.IGNORECASE,
)
_CONTEXT_CHARS = 40  # how far either side of a level word clearance words are looked for
_CONTEXT_STOP = re.compile(r"[.;!?\n()\[\]]")


def _canonical(s: str) -> tuple[str, list[bool]]:
    """The text as markings are matched, and per character whether it was disguised.

    Accents and compatibility forms are folded (NFKD, combining marks dropped), invisible characters
    removed, look-alike letters mapped, whitespace collapsed (a line break kept as one), digits inside
    words read as letters, and spaced-apart single letters joined. Linear in the length of the text.
    """
    out: list[str] = []
    mask: list[bool] = []
    pending = False  # an invisible character was dropped: the next letter was disguised
    for ch in s:
        if ch in _INVISIBLE:
            pending = True
            continue
        if ch.isspace():  # a run of whitespace is one space, or one line break if it holds one
            if out and out[-1] in " \n":
                out[-1] = "\n" if ch == "\n" else out[-1]
            else:
                out.append("\n" if ch == "\n" else " ")
                mask.append(False)
            continue
        if ch < "\x80":
            folded = ch
        else:
            folded = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            folded = folded.translate(_HOMOGLYPHS)
        disguised = pending or folded != ch
        pending = False
        for c in folded:
            if c.isspace():
                c = " "
            out.append(c)
            mask.append(disguised)
    text = "".join(out)
    for m in _MIXED_WORD.finditer(text):
        if any(c in _LEET for c in m.group(0)):
            for i in range(m.start(), m.end()):
                if text[i] in _LEET:
                    out[i] = _LEET[text[i]]
                    mask[i] = True
    text = "".join(out)
    joined: list[str] = []
    joined_mask: list[bool] = []
    last = 0
    for m in _SPACED_LETTERS.finditer(text):
        joined.append(text[last : m.start()])
        joined_mask.extend(mask[last : m.start()])
        for i in range(m.start(), m.end()):
            if text[i] not in _SPACED_SEPARATORS:
                joined.append(text[i])
                joined_mask.append(True)
        last = m.end()
    joined.append(text[last:])
    joined_mask.extend(mask[last:])
    return "".join(joined), joined_mask


def _in_clearance_talk(text: str, start: int, end: int) -> bool:
    """Whether clearance words stand next to the level word at text[start:end], in the same clause."""
    before = _CONTEXT_STOP.split(text[max(0, start - _CONTEXT_CHARS) : start])[-1]
    after = _CONTEXT_STOP.split(text[end : end + _CONTEXT_CHARS])[0]
    return bool(_CLEARANCE_WORDS.search(before) or _CLEARANCE_WORDS.search(after))


def _banner(text: str, mask: list[bool]) -> re.Match[str] | None:
    """The first level word written as a banner: in capitals or disguised, and not talk of clearances."""
    for m in _BANNER_WORDS.finditer(text):
        if any(mask[m.start() : m.end()]):
            return m  # a disguised level word is refused whatever surrounds it
        word = m.group(0)
        if word != word.upper() or _NOT_A_BANNER_AFTER.match(text, m.end()):
            continue
        if text[max(0, m.start() - 4) : m.start()].upper() == "TOP " and word.upper() == "SECRET":
            continue  # the "SECRET" of a "TOP SECRET" already judged
        if not _in_clearance_talk(text, m.start(), m.end()):
            return m
    return None


def find_classification_marking(s: str) -> str | None:
    """The first thing in the text that looks like a US classification marking, as matched, else None.

    Banner and portion-mark syntax is found however spaced or disguised (`TOP SECRET`, `SECRET//`,
    `//NOFORN`, `(S)`, `T0P 5ECRET`); prose about clearances (`TS/SCI clearances`) is not.
    """
    text, mask = _canonical(s)
    found = [
        m
        for m in (
            _LEVEL_SLASHES.search(text),
            _SLASHES_CONTROL.search(text),
            *(p.search(text) for p in _PORTION_MARKS),
            *(p.search(text) for p in _CONTROL_WORDS),
            _banner(text, mask),
        )
        if m is not None
    ]
    if not found:
        return None
    return min(found, key=lambda m: m.start()).group(0).strip()


# --- the free-text gate ---------------------------------------------------------------------------------

# Bidirectional overrides can make stored text display differently from what it is ("Trojan Source").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _bad_character(value: str, *, multiline: bool) -> str | None:
    """A description of the first character free text may not contain, else None."""
    allowed = "\n\t" if multiline else "\t"
    for ch in value:
        if ch in allowed:
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            if ch == "\n":
                return "a line break"
            return f"the control character U+{ord(ch):04X}"
    return None


def check_free_text(
    value: str, *, field: str, max_len: int, required: bool = True, multiline: bool = True
) -> str:
    """The stripped text if storable; raises InputError if empty, too long, has controls or a marking."""
    cleaned = value.replace("\r\n", "\n").strip()
    if not cleaned:
        if required:
            raise InputError(f"`{field}` is empty: give it a value.")
        return ""
    if len(cleaned) > max_len:
        raise InputError(
            f"`{field}` is too long: {len(cleaned):,} characters, the limit is {max_len:,}. "
            "Shorten it, or link to the document instead."
        )
    bad = _bad_character(cleaned, multiline=multiline)
    if bad:
        raise InputError(f"`{field}` contains {bad}, which is not allowed there. Remove it and try again.")
    marking = find_classification_marking(cleaned)
    if marking:
        shown = escape_mrkdwn(marking.replace("`", "'"))
        raise InputError(
            f"`{field}` carries what looks like a classification marking (`{shown}`) and was refused: "
            f"{CLASSIFIED_REFUSAL}. {MARKING_REPHRASE}"
        )
    return cleaned
