"""Safe user text: mrkdwn escaping, mention parsing, and the free-text gate (length, controls, markings)."""

from __future__ import annotations

import re
import unicodedata

from bot.domain.errors import InputError

__all__ = [
    "CLASSIFIED_REFUSAL",
    "check_free_text",
    "escape_mrkdwn",
    "find_classification_marking",
    "format_user_mention",
    "neutralize",
    "parse_channel_ref",
    "parse_user_mention",
    "safe_mrkdwn",
    "unescape_slack",
]

CLASSIFIED_REFUSAL = "contract-bot holds references and status, never classified substance"

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

# Invisible characters that could be slipped between letters to split a marking ("TOP\u200bSECRET").
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"), None)
# Cyrillic and Greek capitals that look like Latin ones ("ЅЕСRЕТ"); NFKC leaves them alone.
_HOMOGLYPHS = str.maketrans(
    "АВСЕНІЈКМОРЅТХУЁΑΒΕΗΙΚΜΝΟΡΤΥΧΖаеорсухѕі",
    "ABCEHIJKMOPSTXYEABEHIKMNOPTYXZaeopcyxsi",
)
_WHITESPACE = re.compile(r"\s+")

# Each pattern runs on NFKC-normalized text with whitespace runs collapsed to one space.
# Upper-case-only patterns are the ones whose words also occur in ordinary prose ("Secret Service",
# "confidential", "Orcon"); anything anchored on "//" or an unusual word is matched in any case.
_MARKING_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\btop[ _-]?secret\b", re.IGNORECASE),
    re.compile(r"\bts ?/ ?sci\b", re.IGNORECASE),
    re.compile(r"\b(?:ts|secret|confidential) ?//", re.IGNORECASE),
    re.compile(r"// ?(?:noforn|nf|rel to|sci|orcon|fvey|imcon|propin|relido)\b", re.IGNORECASE),
    re.compile(r"\bnoforn\b", re.IGNORECASE),
    re.compile(r"\bORCON\b"),
    re.compile(r"\bSECRET\b(?! SERVICE)"),
    re.compile(r"(?<![A-Za-z0-9])(?:S|C)//[A-Z]"),
    # Portion marks: (TS) and (S) alone; (C) only with a control ("(C)" alone is a copyright sign).
    re.compile(r"(?<![A-Za-z0-9])\((?:TS|S)\)"),
    re.compile(r"\((?:TS|S|C) ?// ?[A-Z][A-Z0-9 /,-]*\)"),
    re.compile(r"\((?:TS|S|C)/(?:NF|SCI|SI|TK|HCS|OC|PR|RELIDO|REL\b[A-Z ,]*)\)"),
)


def _normalize_for_markings(s: str) -> str:
    """NFKC, invisible characters removed, look-alike letters mapped, whitespace collapsed."""
    s = unicodedata.normalize("NFKC", s).translate(_INVISIBLE).translate(_HOMOGLYPHS)
    return _WHITESPACE.sub(" ", s)


def find_classification_marking(s: str) -> str | None:
    """The first US classification marking in the text (e.g. `TOP SECRET`, `SECRET//`, `(S)`), else None."""
    text = _normalize_for_markings(s)
    found: re.Match[str] | None = None
    for pattern in _MARKING_PATTERNS:
        m = pattern.search(text)
        if m and (found is None or m.start() < found.start()):
            found = m
    return found.group(0).strip() if found else None


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
            f"`{field}` carries a classification marking (`{shown}`) and was refused: {CLASSIFIED_REFUSAL}. "
            "Record only an unclassified reference."
        )
    return cleaned
