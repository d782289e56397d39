"""The App Home dashboard, built with slack-sdk's Block Kit models and kept within Slack's 100-block limit.

Each list shows MAX_ROWS rows, says which ones ("1–10 of 37"), and has a More button that publishes the Home tab
again with that list's next rows (a Home tab is the viewer's own: nobody else sees it).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    PlainTextObject,
)
from slack_sdk.models.views import View

from bot.services.reviews import DASHBOARD_LISTS, Dashboard
from handlers import limits
from handlers.blocks import ROW_NAME_SHOWN, STATUS_EMOJI, day, md, section, short
from handlers.ids import ActionId, MessageBlockId

MAX_ROWS = 10  # per list; the service may give more (App Home asks for one more), only this many are shown


def build_home_view(d: Dashboard, zone: ZoneInfo | None = None) -> dict:
    """The dashboard: open reviews by status, stop-works and their age, waiting periods, deadlines, my questions.

    At most 15 blocks, each text within Slack's 3,000 characters, whatever the number of contracts."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="EO 14093 contract reviews"))]
    if d.notice:
        blocks.append(ContextBlock(elements=[md(f":information_source: {d.notice}")]))
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
    blocks += _list(
        d,
        "stopworks",
        "*:octagonal_sign: Stop-work orders in effect*",
        [
            f"{ref} {short(vendor, ROW_NAME_SHOWN)}: since {day(since)} ({(d.today - since).days} days)"
            for ref, vendor, since in d.stopworks
        ],
    )
    blocks += _list(
        d,
        "waiting",
        "*:hourglass_flowing_sand: Waiting periods (§2(g))*",
        [f"{ref} {short(vendor, ROW_NAME_SHOWN)}: ends {day(end)}" for ref, vendor, end in d.waiting],
    )
    blocks += _list(
        d,
        "deadlines",
        "*:date: Deadlines: overdue, and the next 7 days*",
        [f"{ref} {short(what, 80)}: {due:%a} {day(due)}" for ref, what, due in d.deadlines],
    )
    blocks += _list(
        d,
        "my_questions",
        "*:memo: Your open questions*",
        [f"{ref} `{qid}` — `/contract answer {ref} {qid} yes|no|unknown`" for ref, qid in d.my_questions],
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
    view = View(type="home", blocks=blocks).to_dict()
    return limits.fit(view, "home", hint="`/contract list` shows every contract.")


def _list(d: Dashboard, key: str, title: str, lines: list[str]) -> list[Block]:
    """One list of the dashboard: its title, up to MAX_ROWS rows, which rows they are, and a More button."""
    if not lines:
        return [section(f"{title}\n_none_")]
    start = d.offsets.get(key, 0)
    shown = lines[:MAX_ROWS]
    total = d.totals.get(key)
    rows = "\n".join(f"• {line}" for line in shown)
    if total is None:  # not counted: there are more exactly when we were given more than we show
        more = "\n…and more: `/contract list` shows every contract" if len(lines) > MAX_ROWS else ""
        return [section(f"{title}\n{rows}{more}")]
    first, last = start + 1, start + len(shown)
    of = f"{total} or more" if key in d.capped else str(total)
    if first == 1 and last >= total:
        return [section(f"{title}\n{rows}")]
    span = f"{first}–{last}" if last > first else f"{first}"
    out: list[Block] = [section(f"{title} ({span} of {of})\n{rows}")]
    label, value = (
        (f"More {DASHBOARD_LISTS[key]}", f"{key}:{last}")
        if last < total
        else ("Back to the first", f"{key}:0")
    )
    if last < total:
        out.append(ContextBlock(elements=[md(f"…and more: {total - last} after these.")]))
    out.append(
        ActionsBlock(
            block_id=f"{MessageBlockId.MORE.value}:{key}",
            elements=[
                ButtonElement(
                    text=PlainTextObject(text=label), action_id=ActionId.HOME_MORE.value, value=value
                )
            ],
        )
    )
    return out
