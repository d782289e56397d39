"""Screening lists as published, read into entries (pure: bytes in, entries out; raises ListFormatError).

- the trade.gov Consolidated Screening List (CSL), CSV or JSON (detected): one row per entry with ``source`` (the
  list it comes from: Entity List, SDN, …), ``entity_number``, ``name`` and ``alt_names`` (``; ``-separated in
  the CSV, a list in the JSON); the JSON is ``{"results": [...]}`` or a bare list of the same objects;
- OFAC's SDN list, ``sdn.csv`` (no header: ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign, Vess_type,
  Tonnage, GRT, Vess_flag, Vess_owner, Remarks; ``-0-`` for empty; the file ends with a ^Z), with its aliases in
  ``alt.csv`` (ent_num, alt_num, alt_type, alt_name, alt_remarks).

An entry's ``key`` stays the same from one snapshot of a list to the next (the list's own number where it has
one, else its normalised name within its source), so that two snapshots can be compared.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bot.domain.names import normalise_name

LISTS = {"csl": "the Consolidated Screening List", "sdn": "OFAC's SDN list"}

_CSL_REQUIRED = ("source", "name")
_SDN_FIELDS = 12
_ALT_FIELDS = 5
_EMPTY = "-0-"


class ListFormatError(ValueError):
    """The file is not the list in its published format, or it is cut short; ``str()`` is one line."""


@dataclass(frozen=True)
class ListEntry:
    """One party on a list: its key, name, where it is listed, and every name normalised (name first)."""

    key: str
    name: str
    source: str
    names: tuple[str, ...] = field(default_factory=tuple)


def _normalised(names: Iterable[str]) -> tuple[str, ...]:
    found = (normalise_name(n) for n in names if n and n.strip() and n.strip() != _EMPTY)
    return tuple(dict.fromkeys(n for n in found if n))


def _text(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else Windows-1252 (OFAC's older files)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _rows(text: str, what: str) -> list[list[str]]:
    """CSV rows; a quote left open (a file cut inside a field) is refused."""
    if text.count('"') % 2:
        raise ListFormatError(f"{what} is cut short: a quoted field is not closed (download it again)")
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as exc:
        raise ListFormatError(f"{what} is not a well-formed CSV file ({exc})") from None


def parse_csl(data: bytes) -> list[ListEntry]:
    """The CSL's entries from its CSV or JSON; raises ListFormatError."""
    text = _text(data).lstrip()
    if not text:
        raise ListFormatError("the file is empty")
    if text[0] in "[{":
        return _parse_csl_json(text)
    return _parse_csl_csv(text)


def _csl_entry(item: dict, alt_names: Sequence[str], where: str) -> ListEntry:
    name = str(item.get("name") or "").strip()
    source = str(item.get("source") or "").strip()
    if not name or not source:
        raise ListFormatError(f"{where} has no name or no source: not a Consolidated Screening List entry")
    number = str(item.get("entity_number") or "").strip()
    key = f"{source}|{number or normalise_name(name) or name}"
    return ListEntry(key, name, source, _normalised([name, *alt_names]))


def _parse_csl_csv(text: str) -> list[ListEntry]:
    what = "the Consolidated Screening List CSV"
    rows = _rows(text, what)
    header = [h.strip().lower() for h in rows[0]]
    if not all(c in header for c in _CSL_REQUIRED) or "alt_names" not in header:
        raise ListFormatError(
            "this is not the Consolidated Screening List (its CSV has the columns source, name and alt_names)"
        )
    if not text.endswith(("\n", "\r")):
        raise ListFormatError(f"{what} is cut short: its last line does not end")
    entries = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ListFormatError(
                f"{what} is cut short or damaged: line {number} has {len(row)} fields, not {len(header)}"
            )
        item = dict(zip(header, row, strict=True))
        alt = [a.strip() for a in item.get("alt_names", "").split(";")]
        entries.append(_csl_entry(item, alt, f"line {number}"))
    return entries


def _parse_csl_json(text: str) -> list[ListEntry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListFormatError(
            f"the Consolidated Screening List JSON is cut short or damaged ({exc.msg}, char {exc.pos})"
        ) from None
    items = doc.get("results") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ListFormatError('this is not the Consolidated Screening List JSON (no "results" list)')
    entries = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ListFormatError(
                f"entry {number} of the JSON is not an object: not the Consolidated Screening List"
            )
        alt = item.get("alt_names") or []
        if isinstance(alt, str):
            alt = alt.split(";")
        entries.append(_csl_entry(item, [str(a).strip() for a in alt], f"entry {number}"))
    return entries


def parse_sdn(data: bytes, alt: bytes | None = None) -> list[ListEntry]:
    """OFAC's SDN entries from sdn.csv, with their aliases from alt.csv when given; raises ListFormatError."""
    what = "OFAC's sdn.csv"
    text = _text(data).rstrip("\x1a\r\n\t ")  # the published file ends with a ^Z line
    if not text:
        raise ListFormatError("the file is empty")
    rows = _rows(text + "\n", what)
    aliases = _parse_alt(alt) if alt is not None else {}
    entries = []
    for number, row in enumerate(rows, start=1):
        if len(row) != _SDN_FIELDS or not row[0].strip().isdigit():
            if number == 1 and len(row) != _SDN_FIELDS:
                raise ListFormatError(
                    f"this is not OFAC's sdn.csv (its lines have {_SDN_FIELDS} fields and no header; "
                    f"line 1 has {len(row)})"
                )
            raise ListFormatError(f"{what} is cut short or damaged: line {number} is not an SDN entry")
        ent_num, name, sdn_type, program = (v.strip() for v in row[:4])
        kind = "" if sdn_type in ("", _EMPTY) else f", {sdn_type}"
        programs = "" if program in ("", _EMPTY) else f" [{program}]"
        source = f"Specially Designated Nationals (SDN) - Treasury{programs}{kind}"
        entries.append(
            ListEntry(f"sdn|{ent_num}", name, source, _normalised([name, *aliases.get(ent_num, [])]))
        )
    return entries


def _parse_alt(data: bytes) -> dict[str, list[str]]:
    what = "OFAC's alt.csv"
    text = _text(data).rstrip("\x1a\r\n\t ")
    found: dict[str, list[str]] = {}
    if not text:
        return found
    for number, row in enumerate(_rows(text + "\n", what), start=1):
        if len(row) != _ALT_FIELDS or not row[0].strip().isdigit():
            raise ListFormatError(
                f"{what} is not OFAC's alias file or is cut short: line {number} is not "
                "ent_num, alt_num, alt_type, alt_name, alt_remarks"
            )
        found.setdefault(row[0].strip(), []).append(row[3].strip())
    return found


@dataclass(frozen=True)
class Diff:
    """What a later snapshot of a list changed: the entries added and removed (by key)."""

    added: tuple[ListEntry, ...]
    removed: tuple[ListEntry, ...]


def diff(before: Iterable[ListEntry], after: Iterable[ListEntry]) -> Diff:
    """The entries of ``after`` not in ``before`` and the other way round, compared by key, in list order."""
    old = {e.key: e for e in before}
    new = {e.key: e for e in after}
    return Diff(
        tuple(e for k, e in new.items() if k not in old),
        tuple(e for k, e in old.items() if k not in new),
    )
