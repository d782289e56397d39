"""Slack's size limits for everything the bot sends, checked in one place (SLACK-FACTS F1.16, F1.20, F1.21, F1.28).

Builders are written to stay within these limits (long answers page, long values are shortened with a visible
"…"). ``fit`` is the one check every reply, message and view passes through on its way out: what is within the
budget goes out unchanged; anything over it is shortened *visibly* (a closing line says so) and logged, never cut
silently and never refused by Slack.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

log = logging.getLogger("contract_bot.limits")

Surface = Literal["message", "modal", "home"]

TEXT_OBJECT_MAX = 3000  # F1.20: a text object holds 1 to 3000 characters
SECTION_TEXT = 2900  # what our builders put in one section, with room to spare
FIELDS_MAX, FIELD_TEXT_MAX = 10, 2000  # F1.20: section fields
BLOCK_ID_MAX = 255  # F1.20
TOP_TEXT_MAX = 3000  # F1.16 asks for `text` at or under 4,000; we keep it to one text object's worth
ELLIPSIS = "…"


@dataclass(frozen=True)
class Budget:
    """What one surface may carry."""

    blocks: int
    text: int  # characters of text in all, top-level `text` included


# F1.20/F1.21: 50 blocks in a message, 100 in a modal or Home tab. F1.28: Slack refuses a message with more than
# about 12,000 characters of text (msg_blocks_too_long); we stay well below. Views have no published total: the same
# safety margin keeps them quick to render.
BUDGETS: dict[str, Budget] = {
    "message": Budget(blocks=50, text=11_000),
    "modal": Budget(blocks=100, text=22_000),
    "home": Budget(blocks=100, text=22_000),
}

_PARTIAL_ENTITY = re.compile(r"&[A-Za-z#0-9]{0,6}$")


def clip(text: str, limit: int = SECTION_TEXT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut.

    The cut never splits an escape (``&amp;``) or a Slack token (``<@U1>``, ``<url|label>``): a half token would
    show as raw text or break the message."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    cut = _PARTIAL_ENTITY.sub("", cut)
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    return cut.rstrip() + ELLIPSIS


def split_text(text: str, limit: int = SECTION_TEXT) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut between lines where it can, else between words,
    never inside an escape or a Slack token; nothing is dropped."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            head = _safe_head(line, limit)
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head.rstrip())
            line = line[len(head) :].lstrip(" ")
        if current and len(current) + 1 + len(line) > limit:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current or not pieces:
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [""]


def _safe_head(line: str, limit: int) -> str:
    """The longest start of ``line`` of at most ``limit`` characters that ends between words (or at least not
    inside an escape or a token)."""
    head = line[:limit]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[: space + 1]
    trimmed = _PARTIAL_ENTITY.sub("", head)
    opened = trimmed.rfind("<")
    if opened > trimmed.rfind(">") and opened > 0:
        trimmed = trimmed[:opened]
    return trimmed or head


# ---- measuring -------------------------------------------------------------------------------------------------


def text_length(node: object) -> int:
    """Characters of text in a payload: every ``text`` string (text objects, fallback text), and alt texts."""
    if isinstance(node, dict):
        total = 0
        for key, value in node.items():
            if key in ("text", "alt_text") and isinstance(value, str):
                total += len(value)
            else:
                total += text_length(value)
        return total
    if isinstance(node, list):
        return sum(text_length(item) for item in node)
    return 0


def _text_objects(node: object, path: str = "") -> list[tuple[str, dict]]:
    """Every text object ({"type": "mrkdwn"|"plain_text", "text": …}) with where it is."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            found.append((path, node))
        for key, value in node.items():
            found += _text_objects(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _text_objects(item, f"{path}[{i}]")
    return found


def problems(
    payload: dict, surface: Surface = "message", *, unchecked_blocks: list[dict] | None = None
) -> list[str]:
    """Every way ``payload`` (a message, or a view for "modal"/"home") breaks Slack's limits; empty when it fits.

    ``unchecked_blocks``: of a message's blocks, the ones slack_sdk's models have not validated yet (the others were
    built as its models, whose ``to_dict`` validates them); None means all of them."""
    budget = BUDGETS[surface]
    found: list[str] = []
    blocks = payload.get("blocks") or []
    if len(blocks) > budget.blocks:
        found.append(f"{len(blocks)} blocks (at most {budget.blocks} in a {surface})")
    total = text_length(payload)
    if total > budget.text:
        found.append(f"{total} characters of text (our budget for a {surface} is {budget.text})")
    top = payload.get("text")
    if isinstance(top, str) and len(top) > TOP_TEXT_MAX:
        found.append(f"`text` of {len(top)} characters (at most {TOP_TEXT_MAX})")
    for path, obj in _text_objects(blocks, "blocks"):
        if not obj["text"]:
            found.append(f"{path}: an empty text object")
        elif len(obj["text"]) > TEXT_OBJECT_MAX:
            found.append(
                f"{path}: a text object of {len(obj['text'])} characters (at most {TEXT_OBJECT_MAX})"
            )
    for i, block in enumerate(blocks):
        if not isinstance(block, dict):
            found.append(f"blocks[{i}] is not an object")
            continue
        fields = block.get("fields") or []
        if len(fields) > FIELDS_MAX:
            found.append(f"blocks[{i}]: {len(fields)} fields (at most {FIELDS_MAX})")
        for j, f in enumerate(fields):
            if isinstance(f, dict) and len(str(f.get("text", ""))) > FIELD_TEXT_MAX:
                found.append(f"blocks[{i}].fields[{j}]: more than {FIELD_TEXT_MAX} characters")
        if len(str(block.get("block_id", ""))) > BLOCK_ID_MAX:
            found.append(f"blocks[{i}]: a block_id over {BLOCK_ID_MAX} characters")
    # What slack_sdk's own Block Kit models refuse (element counts, button labels, values…): to_dict() validates an
    # object and everything in it, validate_json() only the object's own attributes.
    try:
        if surface == "message":
            for block in Block.parse_all(blocks if unchecked_blocks is None else unchecked_blocks):
                block.to_dict()
        else:
            View(**payload).to_dict()
    except (SlackObjectFormationError, TypeError, KeyError, ValueError) as exc:
        found.append(f"Block Kit: {exc}")
    return found


# ---- enforcing -------------------------------------------------------------------------------------------------


class Fitted(dict):
    """A payload that ``fit`` passed (or shortened) for ``surface``: fitting it again for that surface returns it."""

    def __init__(self, payload: dict, surface: Surface) -> None:
        super().__init__(payload)
        self.surface = surface


def fit(
    payload: dict, surface: Surface = "message", *, hint: str = "", unchecked_blocks: list[dict] | None = None
) -> dict:
    """``payload`` unchanged when it is within ``surface``'s limits; otherwise shortened so that it is, ending with
    a line that says it was shortened (and ``hint``: where to see the rest), and logged. Never cut silently.

    ``unchecked_blocks`` as for ``problems``. A reply built by ``handlers.blocks.message`` is fitted there and again
    on its way out, so a payload this returned is not checked twice."""
    if isinstance(payload, Fitted) and payload.surface == surface:
        return payload
    return Fitted(_fit(payload, surface, hint, unchecked_blocks), surface)


def _fit(payload: dict, surface: Surface, hint: str, unchecked_blocks: list[dict] | None) -> dict:
    found = problems(payload, surface, unchecked_blocks=unchecked_blocks)
    if not found:
        return payload
    top = payload.get("text")
    if surface == "message" and not payload.get("blocks") and isinstance(top, str):
        # a text-only reply too long for one text object: the same words over sections, under a short fallback
        spread = {
            **payload,
            "text": clip(top.split("\n", 1)[0], 300),
            "blocks": [_section(piece) for piece in split_text(top)],
        }
        found = problems(spread, surface)
        if not found:
            return spread
        payload = spread
    log.warning("a %s over Slack's limits was shortened: %s", surface, "; ".join(found[:5]))
    budget = BUDGETS[surface]
    out = dict(payload)
    if isinstance(out.get("text"), str):
        out["text"] = clip(out["text"], TOP_TEXT_MAX)
    blocks = [_fit_block(b) for b in (payload.get("blocks") or []) if isinstance(b, dict)]
    notice = _notice(hint)
    reserve = text_length(notice) + 1
    while blocks and (
        len(blocks) + 1 > budget.blocks or text_length({**out, "blocks": blocks}) + reserve > budget.text
    ):
        blocks.pop()
    out["blocks"] = [*blocks, notice]
    if problems(out, surface):  # not even the notice fits beside the fallback text: say only that
        out = {"text": clip(str(out.get("text") or ""), 300) or "(shortened)", "blocks": [notice]}
        if surface != "message":
            out = {**payload, "blocks": [notice]}
    return out


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " ", "verbatim": True}}


def _notice(hint: str) -> dict:
    text = ":warning: This answer was too long for one Slack message, so it was shortened here."
    if hint:
        text += f" {hint}"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 1000), "verbatim": True}]}


def _fit_block(block: dict) -> dict:
    """A copy of ``block`` with every text object and field clipped to its own limit."""

    def walk(node: object, limit: int = TEXT_OBJECT_MAX) -> object:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                return {**node, "text": clip(node["text"], limit) or " "}
            return {
                k: (
                    [walk(f, FIELD_TEXT_MAX) for f in v[:FIELDS_MAX]]
                    if k == "fields" and isinstance(v, list)
                    else walk(v, limit)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(item, limit) for item in node]
        return node

    fitted = walk(block)
    assert isinstance(fitted, dict)  # a dict walks to a dict
    return fitted
