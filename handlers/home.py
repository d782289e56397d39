"""The App Home dashboard, built with slack-sdk's Block Kit models and kept within Slack's 100-block limit."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import ContextBlock, DividerBlock, HeaderBlock, PlainTextObject
from slack_sdk.models.views import View

from bot.services.planner import KINDS
from bot.services.reviews import Dashboard
from handlers.blocks import STATUS_EMOJI, day, esc, md, section, when

MAX_ROWS = (
    10  # per list; the service is asked for one more, so a longer list says "and more" and any number fits
)


def build_home_view(d: Dashboard, zone: ZoneInfo | None = None) -> dict:
    """The dashboard: open reviews by status, stop-works and their age, waiting periods, deadlines, my questions.

    At most 9 blocks, each text clipped to Slack's 3,000 characters, whatever the number of contracts.
    """
    blocks: list = [HeaderBlock(text=PlainTextObject(text="EO 14093 contract reviews"))]
    open_counts = {k: v for k, v in d.counts.items() if k != "closed" and v}
    if open_counts:
        blocks.append(
            section(
                "*Open reviews by status*\n"
                + "   ".join(f"{STATUS_EMOJI.get(k, '')} {k}: *{v}*" for k, v in sorted(open_counts.items()))
            )
        )
    else:
        blocks.append(section("*Open reviews:* none. File one with `/contract file`."))
    blocks.append(DividerBlock())
    blocks.append(
        section(
            "*:octagonal_sign: Stop-work orders in effect*\n"
            + _rows(
                [
                    f"{ref} {esc(vendor)}: since {day(since)} ({(d.today - since).days} days)"
                    for ref, vendor, since in d.stopworks
                ],
                "none",
            )
        )
    )
    blocks.append(
        section(
            "*:hourglass_flowing_sand: Waiting periods (§2(g))*\n"
            + _rows([f"{ref} {esc(vendor)}: ends {day(end)}" for ref, vendor, end in d.waiting], "none")
        )
    )
    blocks.append(
        section(
            "*:date: Deadlines in the next 7 days*\n"
            + _rows(
                [f"{ref} {esc(KINDS.get(kind, kind))}: {when(due, zone)}" for ref, kind, due in d.deadlines],
                "none",
            )
        )
    )
    blocks.append(
        section(
            "*:memo: Your open questions*\n"
            + _rows(
                [
                    f"{ref} `{qid}` — `/contract answer {ref} {qid} yes|no|unknown`"
                    for ref, qid in d.my_questions
                ],
                "none",
            )
        )
    )
    blocks.append(
        ContextBlock(
            elements=[
                md(
                    f"Today is {day(d.today)}. Your roles: {', '.join(d.roles) or 'member'}. "
                    "`/contract help` lists every command."
                )
            ]
        )
    )
    return View(type="home", blocks=blocks).to_dict()


def _rows(lines: list[str], empty: str) -> str:
    if not lines:
        return f"_{empty}_"
    shown = lines[:MAX_ROWS]
    more = "\n…and more: `/contract list` shows every contract" if len(lines) > MAX_ROWS else ""
    return "\n".join(f"• {line}" for line in shown) + more
