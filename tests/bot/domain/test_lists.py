"""Screening lists read as published (bot.domain.lists): CSL CSV and JSON, OFAC SDN with alt.csv, refusals, diffs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.lists import ListEntry, ListFormatError, diff, parse_csl, parse_sdn

LISTS = Path(__file__).resolve().parents[2] / "fixtures" / "lists"


def read(name: str) -> bytes:
    return (LISTS / name).read_bytes()


def test_csl_csv_and_json_read_the_same():
    csv_entries, json_entries = parse_csl(read("csl.csv")), parse_csl(read("csl.json"))
    assert csv_entries == json_entries and len(csv_entries) == 6
    nimbus = csv_entries[0]
    assert nimbus.name == "Nimbus Intercept S.A." and nimbus.source.startswith("Entity List (EL)")
    assert nimbus.names == ("nimbus intercept", "nimbus labs", "nimbus intercept hellas")
    # the Cyrillic name transliterated, its Latin aliases kept
    assert csv_entries[2].names == ("korvet sistems", "korvet systems", "corvette systems")


def test_csl_json_as_a_bare_list_and_with_alt_names_as_text():
    entries = parse_csl(b'[{"source": "Entity List", "name": "Acme Ltd", "alt_names": "Acme; Acme Trading"}]')
    assert entries == [ListEntry("Entity List|acme", "Acme Ltd", "Entity List", ("acme", "acme trading"))]


def test_sdn_with_its_aliases():
    entries = parse_sdn(read("sdn.csv"), read("alt.csv"))
    assert [e.key for e in entries] == ["sdn|99001", "sdn|99002", "sdn|99003"]
    assert entries[0].names == ("korvet systems", "corvette systems")
    assert entries[1].source.endswith("[CYBER2], individual")
    assert "storm petrel tech" in entries[2].names
    assert parse_sdn(read("sdn.csv"))[2].names == ("stormpetrel technologies",)  # without alt.csv


@pytest.mark.parametrize(
    "parse, data, said",
    [
        (parse_csl, b"", "empty"),
        (parse_csl, b"a,b\n1,2\n", "not the Consolidated Screening List"),
        (parse_csl, read("sdn.csv"), "not the Consolidated Screening List"),
        (parse_csl, read("csl.csv")[:-30], "cut short"),
        (parse_csl, read("csl.csv")[:700], "cut short"),
        (parse_csl, read("csl.json")[:-10], "cut short"),
        (parse_csl, b'{"results": 3}', 'no "results" list'),
        (parse_csl, b'{"results": [{"name": "x"}]}', "no name or no source"),
        (parse_sdn, read("csl.csv"), "not OFAC's sdn.csv"),
        (parse_sdn, read("sdn.csv")[:150], "cut short"),
        (parse_sdn, b"\x1a", "empty"),
        (lambda d: parse_sdn(read("sdn.csv"), d), read("sdn.csv"), "not OFAC's alias file"),
    ],
)
def test_refused(parse, data, said):
    with pytest.raises(ListFormatError) as e:
        parse(data)
    assert said in str(e.value) and "\n" not in str(e.value)


def test_diff_of_two_snapshots():
    before, after = parse_csl(read("csl.csv")), parse_csl(read("csl-2.csv"))
    changes = diff(before, after)
    assert [e.name for e in changes.added] == ["Vireo Analytics GmbH"]
    assert [e.name for e in changes.removed] == ["Halcyon Signals Ltd."]
    assert diff(before, before).added == diff(before, before).removed == ()
