"""Names normalised and matched (bot.domain.names): legal forms, punctuation, transliteration, near misses."""

from __future__ import annotations

import pytest

from bot.domain.names import MATCH_THRESHOLD, best_match, is_match, match_many, normalise_name, score


@pytest.mark.parametrize(
    "name, normalised",
    [
        ("Intellexa S.A.", "intellexa"),
        ("INTELLEXA SA", "intellexa"),
        ("Intellexa S. A.", "intellexa"),
        ("Paragon Solutions (US) Inc.", "paragon solutions"),
        ("Paragon Solutions, Inc.", "paragon solutions"),
        ("NSO Group Technologies Ltd", "nso group technologies"),
        ("Cytrox AD", "cytrox"),
        ("Candiru Ltd.", "candiru"),
        ("Saito Tech Ltd", "saito tech"),
        ("Memento Labs S.r.l.", "memento labs"),
        ("Hacking Team S.p.A.", "hacking team"),
        ("FinFisher GmbH", "finfisher"),
        ("Gamma International B.V.", "gamma international"),
        ("Acme Co., Ltd.", "acme"),
        ("Acme Holdings plc", "acme holdings"),  # a holding company is an entity of its own
        ("Société Générale S.A.S.", "societe generale"),
        ("Zürich Überwachung AG", "zurich uberwachung"),
        ("Weiß & Söhne KG", "weiss and sohne"),
        ("O'Neil Intelligence, LLC", "oneil intelligence"),
        ("ООО «Ромашка»", "romashka"),
        ("АО Корвет", "korvet"),
        ("Ἀλφα Α.Ε.", "alfa"),
        ("  The   Company  ", "the"),  # never the last word
        ("Company", "company"),
        ("Limited Inc", "limited"),
        ("(Acme)", "acme"),  # only parentheses: their text is the name
        ("I B M Corp", "ibm"),
        ("---", ""),
    ],
)
def test_normalise(name, normalised):
    assert normalise_name(name) == normalised


@pytest.mark.parametrize(
    "a, b",
    [
        ("Intellexa S.A.", "INTELLEXA SA"),
        ("Paragon Solutions (US) Inc.", "Paragon Solutions"),
        ("Paragon Solution", "Paragon Solutions"),  # a typo
        ("Solutions Paragon", "Paragon Solutions"),  # word order
        ("Intelexa", "Intellexa Limited"),
        ("Korvet Sistems LLC", "ООО Корвет Системс"),  # transliterated (not respelled: "systems" is an alias)
        ("Hacking-Team", "Hacking Team S.p.A."),
    ],
)
def test_same_company(a, b):
    assert is_match(a, b), score(a, b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("Paragon Software Group", "Paragon Solutions"),  # another company with a common first word
        ("Paragon Solutions Group", "Paragon Solutions"),  # a group (or the parent): recorded with parent=
        ("NSO Group", "NSO Group Technologies"),
        ("Intellexa Holdings", "Intellexa"),
        ("Candiru", "Saito Tech"),  # a renamed company is an alias, not a fuzzy match
        ("Acme", "Acne"),  # one letter in a short name
        ("", "Acme"),
    ],
)
def test_near_misses_do_not_match(a, b):
    assert not is_match(a, b), score(a, b)


def test_threshold_is_between_the_misses_and_the_matches():
    assert (
        score("Paragon Solutions Group", "Paragon Solutions")
        < MATCH_THRESHOLD
        <= score("Paragon Solution", "Paragon Solutions")
    )


def test_match_many_finds_every_pair_above_the_threshold():
    vendors = [normalise_name(n) for n in ("Paragon Solutions", "Intellexa", "Acme Widgets")]
    listed = [normalise_name(n) for n in ("INTELLEXA SA", "Acme Widget Co", "Paragon Software", "Nobody")]
    hits = {(h.query, h.choice) for h in match_many(vendors, listed)}
    assert hits == {(1, 0), (2, 1)}
    assert match_many([], listed) == [] and match_many(vendors, []) == []


def test_best_match():
    names = [normalise_name(n) for n in ("Paragon Solutions", "Paragon Software Group")]
    assert best_match(normalise_name("Paragon Solutions (US) Inc."), names) == (0, 100.0)
    assert best_match(normalise_name("Paragon"), names) is None
    assert best_match("", names) is None
