"""Names of companies, normalised and matched (vendors against each other and against screening lists). Pure.

Normalising (``normalise_name``), in this order:

1. NFKC, casefold (``ß`` -> ``ss``), ``&`` -> ``and``;
2. Cyrillic and Greek letters transliterated to Latin with a small table (BGN/PCGN-like, one way: enough for
   ``ООО Ромашка`` and ``Ромашка`` to meet ``Romashka``; not a scholarly romanisation);
3. NFKD and combining marks dropped (``Société`` -> ``societe``);
4. dots and apostrophes joined (``S.A.`` -> ``sa``, ``O'Neil`` -> ``oneil``), any other punctuation a space,
   and runs of single letters joined (``S. A.`` -> ``sa``);
5. a parenthesised part dropped when something is left (``Paragon Solutions (US) Inc.``: a jurisdiction or
   a trading name; an alias is recorded as an alias);
6. legal forms dropped at the end (repeatedly: ``Co., Ltd.``) and at the start (``OOO``, ``JSC``), never the
   last word: see ``LEGAL_FORMS``. ``Holding(s)`` and ``Group`` are kept: a holding company or a group is an
   entity of its own (it is the parent, recorded with ``parent=``), and ``Group`` is a real part of many
   names (``NSO Group``).

Matching: the normalised words sorted, then rapidfuzz's ``ratio`` (the Indel similarity, 0..100, what
``token_sort_ratio`` computes) against ``MATCH_THRESHOLD``. ``ratio`` rather than ``WRatio``: WRatio's
partial matching scores ``paragon`` against ``paragon software group`` at 90, and a screening hit on every
company whose name contains a common word is noise a manager learns to ignore. Sorting the words makes
``Solutions Paragon`` meet ``Paragon Solutions``. ``match_many`` runs every pair at once with
``rapidfuzz.process.cdist`` and a score cutoff (C++, all cores), which takes seconds for 20,000 entries
against 1,000 vendors.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# 91: "paragon solutions" and "paragon solution" (a typo, a plural) score 97; "intelexa" against "intellexa" 94;
# "paragon software group" against "paragon solutions" scores 56 and "paragon solutions group" 85 (a near miss:
# another company, or the parent, which is linked with parent=); "nso group" against "nso group technologies" 58.
MATCH_THRESHOLD = 91.0

# Legal forms, written as they are after step 4 (dots joined). Both ends, never the only word.
LEGAL_FORMS = frozenset(
    {
        # English-speaking
        "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "llp", "lp",
        "plc", "pllc", "pty", "pte", "lc",
        # Romance languages
        "sa", "sas", "sasu", "sarl", "srl", "spa", "sl", "slu", "sau", "ltda", "sca", "scs", "snc", "eurl",
        # German, Dutch, Nordic
        "gmbh", "ag", "kg", "ohg", "ug", "bv", "nv", "vof", "ab", "as", "asa", "aps", "oy", "oyj",
        # Central and eastern Europe, Israel, Cyrillic forms after transliteration
        "sro", "kft", "zrt", "nyrt", "sp", "zoo", "doo", "dd", "ad", "ead", "eood", "ood", "jsc", "ojsc",
        "cjsc", "pjsc", "ooo", "oao", "zao", "pao", "ao", "tov", "bm",
        # Greek (after transliteration)
        "ae", "epe", "ike",
    }
)  # fmt: skip

_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "",
    "э": "e", "ю": "yu", "я": "ya", "і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "u", "ђ": "dj", "ј": "j",
    "љ": "lj", "њ": "nj", "ћ": "c", "џ": "dz", "ѓ": "gj", "ќ": "kj", "ѕ": "dz",
}  # fmt: skip
_GREEK = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th", "ι": "i", "κ": "k",
    "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p", "ρ": "r", "σ": "s", "ς": "s", "τ": "t",
    "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps", "ω": "o",
}  # fmt: skip
# accented Greek letters are decomposed first (NFD) so that the table needs only the bare ones
_TRANSLIT = str.maketrans({**_CYRILLIC, **_GREEK})

_JOINED = re.compile(r"[.'’`´]")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_NOT_WORD = re.compile(r"[\W_]+")


def transliterate(text: str) -> str:
    """Latin letters for Cyrillic and Greek ones (lower case in, lower case out), other text unchanged."""
    decomposed = unicodedata.normalize("NFD", text)
    return decomposed.translate(_TRANSLIT)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    text = transliterate(text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _JOINED.sub("", text)


def _words(text: str) -> list[str]:
    return _NOT_WORD.sub(" ", text).split()


def _join_letters(words: list[str]) -> list[str]:
    """Runs of single letters made one word: ``S. A.`` and ``B V`` are ``sa`` and ``bv``, ``I B M`` is ``ibm``."""
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if run:
            out += ["".join(run)] if len(run) > 1 else run
            run = []
        if word:
            out.append(word)
    return out


def _strip_legal_forms(words: list[str]) -> list[str]:
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words = words[:-1]
    while len(words) > 1 and words[0] in LEGAL_FORMS:
        words = words[1:]
    return words


def normalise_name(name: str) -> str:
    """The name a company goes by, for comparing: lower case, Latin, no accents, punctuation or legal form.

    "" for a name with no letters or digits.
    """
    folded = _fold(name)
    without_parens = _PARENS.sub(" ", folded)
    words = _join_letters(_words(without_parens) or _words(folded))
    return " ".join(_strip_legal_forms(words))


def match_key(normalised: str) -> str:
    """The normalised name's words sorted: what ``score`` compares (word order does not matter)."""
    return " ".join(sorted(normalised.split()))


def score(a: str, b: str) -> float:
    """How alike two names are, 0..100, after normalising both."""
    ka, kb = match_key(normalise_name(a)), match_key(normalise_name(b))
    if not ka or not kb:
        return 0.0
    return float(fuzz.ratio(ka, kb))


def is_match(a: str, b: str, threshold: float = MATCH_THRESHOLD) -> bool:
    """Whether two names are taken for the same company."""
    return score(a, b) >= threshold


@dataclass(frozen=True)
class Hit:
    """``queries[query]`` looks like ``choices[choice]`` with this score."""

    query: int
    choice: int
    score: float


def match_many(
    queries: Sequence[str], choices: Sequence[str], threshold: float = MATCH_THRESHOLD
) -> list[Hit]:
    """Every pair (query, choice) of NORMALISED names scoring at least ``threshold``, best first per query.

    All pairs at once in C++ (rapidfuzz.process.cdist with a score cutoff: a pair below it costs little).
    """
    if not queries or not choices:
        return []
    qkeys = [match_key(q) for q in queries]
    ckeys = [match_key(c) for c in choices]
    matrix = process.cdist(qkeys, ckeys, scorer=fuzz.ratio, score_cutoff=threshold, dtype="uint8", workers=-1)
    hits: list[Hit] = []
    rows, cols = matrix.nonzero()
    for qi, ci in zip(rows.tolist(), cols.tolist(), strict=True):
        if qkeys[qi] and ckeys[ci]:
            hits.append(Hit(qi, ci, float(matrix[qi, ci])))
    hits.sort(key=lambda h: (h.query, -h.score, h.choice))
    return hits


def best_match(
    name: str, choices: Iterable[str], threshold: float = MATCH_THRESHOLD
) -> tuple[int, float] | None:
    """The index and score of the NORMALISED choice most like the normalised ``name``, or None below the threshold."""
    key = match_key(name)
    if not key:
        return None
    keys = [match_key(c) for c in choices]
    found = process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=threshold)
    if found is None:
        return None
    _, value, index = found
    return int(index), float(value)
