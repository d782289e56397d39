"""Block Kit builders (``build_*``) and the outbox renderer. All user text is escaped; mentions come from IDs.

Everything built here fits Slack's limits (handlers.limits): long answers page, long values are shortened with a
visible "…", long texts are split over several sections, and every message passes ``limits.fit`` on its way out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain import clocks_far, review
from bot.domain.text import escape_mrkdwn, quote_lines
from bot.services.reviews import ContractList, RolesList, SettingsList, Timeline
from bot.services.runtime import PLANNED_ZONE_KEY
from bot.services.views import ContractView, Page
from handlers import limits
from handlers.ids import ActionId, MessageBlockId

SECTION_LIMIT = limits.SECTION_TEXT  # Slack's text object allows 3000 characters
NAME_SHOWN = 200  # characters of a name (vendor, product, agency…) shown, escaped
ROW_NAME_SHOWN = 60  # … in one row of a list
REASON_SHOWN = 1500  # characters of a reason or note shown in `show` and the thread
MENTIONS_SHOWN = 30  # reviewers named in `show`
ROLE_HOLDERS_SHOWN = 100  # holders of one role named in `admin roles`


def esc(value: object) -> str:
    """User text made inert for mrkdwn."""
    return escape_mrkdwn("" if value is None else str(value))


def short(value: object, limit: int = NAME_SHOWN) -> str:
    """User text made inert for mrkdwn and shortened to ``limit`` characters with a visible "…"."""
    return clip(esc(value), limit)


def said(value: object, limit: int) -> str:
    """A reason or note as ``short`` gives it, set off as a quote when it spans lines: none of its lines can pass
    for one of the bot's (bot.domain.text.quote_lines)."""
    return quote_lines(short(value, limit))


def clip(text: str, limit: int = SECTION_LIMIT) -> str:
    """Cut text to fit a Block Kit text object, visibly ("…"), never inside an escape or a Slack token."""
    return limits.clip(text, limit)


def md(text: str) -> MarkdownTextObject:
    """A mrkdwn text object with Slack's automatic parsing off (no surprise @here or links)."""
    return MarkdownTextObject(text=clip(text) or " ", verbatim=True)


def section(text: str) -> SectionBlock:
    """A section block of (already escaped) mrkdwn."""
    return SectionBlock(text=md(text))


def sections(text: str) -> list[SectionBlock]:
    """(Already escaped) mrkdwn over as many section blocks as it needs, split between lines: nothing is lost."""
    return [section(piece) for piece in limits.split_text(text, SECTION_LIMIT)]


def message(text: str, blocks: Sequence[Block | dict], *, hint: str = "") -> dict:
    """A message (fallback ``text`` and blocks) checked against Slack's limits (limits.fit)."""
    # the fallback (notifications, screen readers) is the message itself when short, else its start
    fallback = text if len(text) <= limits.TOP_TEXT_MAX else clip(text, 500)
    body = {"text": fallback, "blocks": [b.to_dict() if isinstance(b, Block) else b for b in blocks]}
    # a slack_sdk model validated itself in to_dict(); only the blocks given as dicts are left to check
    unchecked = [b for b in blocks if not isinstance(b, Block)]
    return limits.fit(body, "message", hint=hint, unchecked_blocks=unchecked)


def versioned(blocks: Sequence[Block], prefix: str) -> list[dict]:
    """Blocks whose block_id changes with their content, so Slack clients re-render a block an edit changed
    (SLACK-FACTS F1.31); an unchanged block keeps its id, so an identical edit stays identical."""
    out = []
    for i, block in enumerate(blocks):
        body = {k: v for k, v in block.to_dict().items() if k != "block_id"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()[:12]
        out.append({**body, "block_id": f"{prefix}{i}.{digest}"})
    return out


def money(cents: int | None) -> str:
    """$2,000,000 style."""
    if cents is None:
        return "—"
    dollars, rest = divmod(cents, 100)
    return f"${dollars:,}" + (f".{rest:02d}" if rest else "")


def day(d: date | None) -> str:
    """ISO date or a dash."""
    return d.isoformat() if d else "—"


def when(instant: datetime | None, zone: ZoneInfo | None = None) -> str:
    """A Slack date token that shows in the reader's own zone, with a plain fallback."""
    if instant is None:
        return "—"
    fallback = instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if zone else instant.isoformat()
    return f"<!date^{int(instant.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def more_button(action: ActionId, value: str, label: str) -> ActionsBlock:
    """The "More" button of a long answer: its next page, shown privately."""
    return ActionsBlock(
        block_id=MessageBlockId.MORE.value,
        elements=[ButtonElement(text=PlainTextObject(text=label), action_id=action.value, value=value)],
    )


STATUS_EMOJI = {
    "intake": ":inbox_tray:",
    "in-review": ":mag:",
    "stop-work": ":octagonal_sign:",
    "determined": ":scales:",
    "prohibited": ":no_entry:",
    "certified": ":white_check_mark:",
    "waiting": ":hourglass_flowing_sand:",
    "cleared": ":large_green_circle:",
    "waiver": ":page_facing_up:",
    "out-of-scope": ":heavy_minus_sign:",
    "closed": ":lock:",
}


def status_label(status: str) -> str:
    """Emoji and status word."""
    return f"{STATUS_EMOJI.get(status, '')} *{status}*".strip()


def progress_line(v: ContractView) -> str:
    """ "answered n of N, k red flags"."""
    flags = len(v.red_flags)
    flag_text = (
        f", :triangular_flag_on_post: {flags} red flag{'s' if flags != 1 else ''} ({', '.join(v.red_flags)})"
        if flags
        else ", 0 red flags"
    )
    return f"answered {v.answered} of {v.total}{flag_text}"


# ---- the parent message and the questions in its thread --------------------------------------------------


def build_parent_message(v: ContractView) -> dict:
    """The parent message in REVIEW_CHANNEL: reference, parties, value, award, status, progress."""
    title = f"{v.ref}: {short(v.vendor)} / {short(v.product)}"
    lines = [
        f"*{title}*",
        f"*Agency:* {short(v.agency)}" + (f" ({short(v.component)})" if v.component else ""),
        f"*Value:* {money(v.value_cents)}   *Awarded:* {day(v.awarded_on)}   *Purpose:* {esc(v.purpose or '—')}",
        f"*Status:* {status_label(v.status)}   *Progress:* {progress_line(v)}",
    ]
    if v.state.stopwork_since:
        lines.append(
            f":octagonal_sign: Stop-work in effect since {day(v.state.stopwork_since)}{stopwork_lapse(v)}"
        )
    use = v.verdict.summary  # closed and out-of-scope contracts say so, not "not permitted"
    lines.append(f"*Operational use:* {use}")
    blocks = [
        section("\n".join(lines)),
        ContextBlock(
            elements=[md(f"Filed by <@{v.filed_by}> · `/contract show {v.ref}` for the full record")]
        ),
    ]
    text = f"{v.ref}: {short(v.vendor)} / {short(v.product)} — {v.status}, {progress_line(v)}"
    # NOTE: edited on every answer: new block ids for changed blocks, so clients re-render them (F1.31)
    return message(text, versioned(blocks, f"{MessageBlockId.PARENT.value}:"))


def stopwork_lapse(v: ContractView) -> str:
    """The parent message's note on a stop-work order past its last day (FAR 52.242-15), or ""."""
    s = v.state
    assert s.stopwork_since is not None  # only called when there is one
    lapsed = clocks_far.stopwork_lapsed_on(s.stopwork_since, s.stopwork_extended_until, v.today)
    if lapsed is None:
        return ""
    return f", lapsed on {day(lapsed)} (FAR 52.242-15): record `resume` or `stopwork-extend`"


def stopwork_clock(v: ContractView) -> str:
    """`show`'s stop-work clock: when the order lapses (extended or not), or that it lapsed and what to record."""
    s = v.state
    assert s.stopwork_since is not None  # only called when there is one
    lapses = clocks_far.stopwork_lapses_on(s.stopwork_since, s.stopwork_extended_until)
    extended = " (extended by agreement)" if s.stopwork_extended_until else ""
    if v.today > lapses:
        return (
            f"*lapsed on {day(lapses)}*{extended}: the contractor may resume work. No lift is on record, so the "
            "bot still treats the order as blocking operational use (fail-safe); lapsing is not a compliance "
            f"finding. Record `resume {v.ref}` or an agreed `stopwork-extend {v.ref}`"
        )
    if s.stopwork_extended_until:
        return f"extended by agreement through {day(lapses)}"
    return f"lapses after {day(lapses)} ({clocks_far.STOPWORK_DAYS} days) unless extended (`stopwork-extend`)"


def build_question_message(v: ContractView, qid: str) -> dict:
    """One question in the thread: its ID and wording, Yes / No / Unknown buttons, a way to add a note."""
    q = v.question(qid)
    assert q is not None, f"unknown question {qid}"  # queued by the service for a question it asked
    header = f"*{q.qid}* ({q.citation}) {esc(q.text)}"
    blocks: list = [section(header)]
    value = f"{v.id}:{q.qid}"
    frozen = not review.answers_open(v.state)  # open again during a §2(j) re-determination
    if q.answer:
        flag = " :triangular_flag_on_post: red flag" if q.red_flag else ""
        answered = f"*Answer: {q.answer.capitalize()}*{flag} — <@{q.answered_by}>, {when(q.answered_at)}"
        blocks.append(ContextBlock(elements=[md(answered)]))
    if q.note:
        blocks.append(ContextBlock(elements=[md(f"Note: {said(q.note, REASON_SHOWN)}")]))
    if not frozen:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Yes"),
                        action_id=ActionId.ANSWER_YES.value,
                        value=value,
                        style="primary" if q.answer == "yes" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="No"),
                        action_id=ActionId.ANSWER_NO.value,
                        value=value,
                        style="primary" if q.answer == "no" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Unknown"),
                        action_id=ActionId.ANSWER_UNKNOWN.value,
                        value=value,
                        style="primary" if q.answer == "unknown" else None,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Add note"), action_id=ActionId.ADD_NOTE.value, value=value
                    ),
                ],
            )
        )
    else:
        why = "the contract is closed" if v.state.closed_on else "a determination has been recorded"
        blocks.append(ContextBlock(elements=[md(f"Answers are frozen: {why}.")]))
    state = f" — answered {q.answer.capitalize()}" if q.answer else ""
    # NOTE: edited when answered or noted: new block ids for changed blocks, so clients re-render them (F1.31)
    return message(
        f"{v.ref} {q.qid}: {esc(q.text)}{state}",
        versioned(blocks, f"{MessageBlockId.QUESTION.value}:{q.qid}:"),
    )


def build_text_message(text: str) -> dict:
    """A plain thread or channel line (already escaped by its author), over several sections if it is long."""
    return message(text, sections(text))


def render_outbox(payload: dict, view: ContractView | None) -> dict:
    """The outbox renderer: turns a queued payload into a Slack message from the current state."""
    kind = payload.get("render")
    if kind == "parent" and view is not None:
        return build_parent_message(view)
    if kind == "question" and view is not None:
        return build_question_message(view, payload["qid"])
    if kind == "reminder":
        return build_reminder_message(payload)
    return build_text_message(payload.get("text", ""))


def build_reminder_message(payload: dict) -> dict:
    """A reminder: starts with "Reminder:", names the contract, what is due, since when, what to do; snooze buttons."""
    text = payload.get("text", "")
    blocks: list[Block] = list(sections(text))
    keys = payload.get("snooze_keys")
    if keys:
        # a button's value holds 2,000 characters: whole keys only (a cut key would snooze nothing)
        value = ""
        for key in (str(k) for k in keys):
            if len(value) + len(key) + 1 > 1900:
                break
            value = f"{value},{key}" if value else key
        blocks.append(
            ActionsBlock(
                block_id=MessageBlockId.SNOOZE.value,
                elements=[
                    ButtonElement(
                        text=PlainTextObject(text="Remind me tomorrow"),
                        action_id=ActionId.SNOOZE_TOMORROW.value,
                        value=value,
                    ),
                    ButtonElement(
                        text=PlainTextObject(text="Remind me in 3 days"),
                        action_id=ActionId.SNOOZE_3D.value,
                        value=value,
                    ),
                ],
            )
        )
    return message(text, blocks)


def build_snoozed_reminder(original: object, note: str) -> dict | None:
    """A reminder message as its channel sees it once snoozed: its text, and in place of the snooze buttons who
    snoozed it until when (so nobody snoozes it twice, or wonders where it went). None if there is no message."""
    if not isinstance(original, dict):
        return None
    kept = [b for b in original.get("blocks") or [] if isinstance(b, dict) and b.get("type") == "section"]
    if not kept:
        return None
    text = original.get("text") if isinstance(original.get("text"), str) else note
    return message(text or note, [*kept, ContextBlock(elements=[md(f":zzz: {note}")])])


# ---- replies to the person who asked ------------------------------------------------------------------


def build_show(v: ContractView, zone: ZoneInfo | None = None) -> dict:
    """`show CR-n`: may this tool be used operationally, and if not, exactly what is still missing."""
    s = v.state
    lines = [
        f"*{v.ref}: {short(v.vendor)} / {short(v.product)}*  {status_label(v.status)}",
        f"*Agency:* {short(v.agency)}"
        + (f" ({short(v.component)})" if v.component else "")
        + f"   *Value:* {money(v.value_cents)}   *Awarded:* {day(v.awarded_on)}   *Purpose:* {esc(v.purpose or '—')}",
    ]
    extra = []
    if v.term:
        extra.append(f"*Term:* {short(v.term)}")
    if v.term_ends:
        extra.append(f"*Period of performance:* through {day(v.term_ends)}")
    if v.contract_no:
        extra.append(f"*Contract no.:* {short(v.contract_no)}")
    if v.parent:
        extra.append(f"*Ultimate owner:* {short(v.parent)}")
    if v.third_party is not None:
        extra.append(f"*Third party operates it:* {'yes' if v.third_party else 'no'}")
    if v.restricted:  # need-to-know: say so to whoever may read it, and that the read is on record
        extra.append(":lock: *Restricted:* every read of it is in its audit log")
    if extra:
        lines.append("   ".join(extra))
    if v.verdict.closed_on or v.verdict.not_applicable:
        # not "not permitted … still missing": the order does not apply, or the contract is over
        use = v.verdict.headline
    elif v.verdict.permitted:
        use = ":large_green_circle: *Operational use is permitted*" + (
            f" under a waiver in force through {day(s.waiver_until)}" if v.verdict.via_waiver else ""
        )
    else:
        use = ":red_circle: *Operational use is not permitted.* Still missing:\n" + "\n".join(
            f"• {m}" for m in v.verdict.missing
        )
    blocks: list = [*sections("\n".join(lines)), *sections(use)]
    facts = [
        f"*Answers:* {progress_line(v)}"
        + (" — the order does not apply (SCOPE-1 = No)" if v.out_of_scope else "")
        + f" (question set {esc(v.question_set)})"
    ]
    facts.append(
        f"*Stop-work:* in effect since {day(s.stopwork_since)} ({(v.today - s.stopwork_since).days} days): "
        f"{said(v.stopwork_reason, REASON_SHOWN)}"
        if s.stopwork_since
        else "*Stop-work:* none in effect"
    )
    if s.stopwork_since:
        facts.append(f"*Stop-work clock (FAR 52.242-15):* {stopwork_clock(v)}")
    if v.review_due:
        facts.append(f":mag: {v.review_due}")
    if s.determination:
        facts.append(
            f"*Determination:* {s.determination} on {day(s.determined_on)} by <@{v.determined_by}>: "
            f"{said(v.determination_reason, REASON_SHOWN)}"
        )
        if s.redetermination_on:
            facts.append(
                f"*Re-determination (§2(j)):* under way since {day(s.redetermination_on)}: the answers are open "
                "again until an official records `determine`"
            )
    else:
        facts.append("*Determination:* none yet")
    facts.append(
        f"*Certification (§2(f)):* {short(s.certified_by)} on {day(s.certified_on)}"
        if s.certified_on
        else "*Certification (§2(f)):* none"
    )
    if s.notice_on:
        cleared = f", cleared by the APNSA on {day(s.cleared_on)}" if s.cleared_on else ""
        facts.append(
            f"*APNSA notice (§2(g)):* {day(s.notice_on)}; waiting period ends {day(v.waiting_end)}{cleared}"
        )
    else:
        facts.append("*APNSA notice (§2(g)):* not sent")
    if v.verdict.earliest_on and not v.verdict.permitted:
        facts.append(f"*Earliest permitted operational use:* {day(v.verdict.earliest_on)}")
    if s.waiver_issued_on:
        if s.waiver_revoked_on:
            life = f"in force through {day(s.waiver_until)}, revoked {day(s.waiver_revoked_on)}"
        elif s.waiver_until and v.today > s.waiver_until:
            life = f"expired after {day(s.waiver_until)}"
        else:
            life = f"in force through {day(s.waiver_until)} (expires after that day)"
        facts.append(
            f"*Waiver (§2(m)):* by the {short(v.waiver_official)}, issued {day(s.waiver_issued_on)}, {life}"
        )
        facts.append(
            f"*Extraordinary circumstances (§2(m)):* {said(v.waiver_circumstances, REASON_SHOWN)}"
            if v.waiver_circumstances
            else "*Extraordinary circumstances (§2(m)):* not recorded"
        )
        facts.append(
            f"*No feasible alternative (§2(m)):* {said(v.waiver_alternatives, REASON_SHOWN)}"
            if v.waiver_alternatives
            else "*No feasible alternative (§2(m)):* not recorded"
        )
    if v.waiver_report_due:
        facts.append(f"*72-hour report due:* {when(v.waiver_report_due, zone)}")
    if s.closed_on:
        facts.append(f"*Closed:* {day(s.closed_on)}: {said(v.close_reason, REASON_SHOWN)}")
    facts += v.screening  # the vendor, and open screening matches first (escaped by the service)
    if v.reviewers:
        named = ", ".join(f"<@{u}>" for u in v.reviewers[:MENTIONS_SHOWN])
        rest = len(v.reviewers) - MENTIONS_SHOWN
        facts.append(f"*Reviewers ({len(v.reviewers)}):* {named}" + (f" and {rest} more" if rest > 0 else ""))
    if v.next_reminders:
        facts.append("*Next reminders:* " + "; ".join(f"{k} {when(t, zone)}" for k, t in v.next_reminders))
    blocks += sections("\n".join(facts))
    answered = [q for q in v.questions if q.answer]
    if answered:
        rows = [f"`{q.qid}` {q.answer}{' :triangular_flag_on_post:' if q.red_flag else ''}" for q in answered]
        blocks += sections("*Answers:* " + "  ".join(rows))
    thread = v.thread
    if thread:
        blocks.append(ContextBlock(elements=[md(f"Thread: {thread}")]))
    text = f"{v.ref} {v.status}: operational use {v.verdict.summary}"
    if v.verdict.closed_on or v.verdict.not_applicable:
        text = f"{v.ref}: {v.verdict.summary}"
    return message(text, blocks, hint=f"`/contract audit {v.ref}` has every entry of the record.")


def build_list(result: ContractList) -> dict:
    """`list [status] [page=N]`: one page of contracts, newest first, saying which ones it shows."""
    status, total, page = result.status, result.total, result.page
    which = f" with status {status}" if status else ""
    if not total or page is None:
        return {"text": f"No contracts{which} yet."}
    lines = [
        f"*{v.ref}* {short(v.vendor, ROW_NAME_SHOWN)} / {short(v.product, ROW_NAME_SHOWN)} — "
        f"{short(v.agency, ROW_NAME_SHOWN)} · {status_label(v.status)} · {v.answered}/{v.total} answered"
        + (f" · {len(v.red_flags)} red flags" if v.red_flags else "")
        for v in result.rows
    ]
    first, last = page.offset + 1, page.offset + len(result.rows)
    head = (
        f"{total} contract{'s' if total != 1 else ''}{which}, newest first: {_span(first, last)} of {total}"
    )
    if page.pages > 1:
        head += f" (page {page.number} of {page.pages})"
    blocks: list[Block] = [section(f"*{head}*"), *sections("\n".join(lines))]
    typed = "/contract list" + (f" {status}" if status else "")
    if not page.is_last:
        blocks.append(
            ContextBlock(
                elements=[md(f"Older contracts: *More* below, or `{typed} page={page.number + 1}`.")]
            )
        )
        nxt = page_after(page)
        blocks.append(
            more_button(ActionId.LIST_MORE, f"{status or ''}:{nxt.number}", f"More ({_span_of(nxt)})")
        )
    elif page.pages > 1:
        blocks.append(ContextBlock(elements=[md(f"This is the last page: the oldest contracts{which}.")]))
    return message(head, blocks)


def build_timeline(t: Timeline, zone: ZoneInfo | None = None) -> dict:
    """`audit CR-n [page=N]`: one page of the contract's audit log in time order (page 1 the newest entries), every
    event with actor, time and what changed (refusals included), saying which entries it shows and where the rest
    are. Entries are numbered 1..n within the contract; the chain's own number is shown as a reference."""
    page = t.page
    if not t.entries or page is None:
        return {"text": f"No audit entries for {t.ref}."}
    heads, bodies = [], []
    # a detail (a refusal's reason) gets at most a third of an entry's share of the page, the changes the rest
    detail_shown = min(AUDIT_VALUE_SHOWN, max(40, AUDIT_PAGE_TEXT // len(t.entries) // 3))
    for position, e in enumerate(t.entries, start=t.first_position):
        mark = ":no_entry_sign: refused " if e.outcome == "refused" else ""
        # NOTE: the time in the bot's zone as plain text, not a <!date> token: 40 lines of tokens cost 2,000 characters
        at = (
            e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            if zone
            else e.at.strftime("%Y-%m-%d %H:%M UTC")
        )
        detail = f" — {said(e.detail, detail_shown)}" if e.detail else ""
        heads.append(
            (
                f"*{position}.* {at} {actor_name(e.actor)} {mark}*{short(e.action, 40)}*{detail}",
                f" `#{e.seq}`",
            )
        )
        bodies.append(_changes(e.before, e.after, actor=e.actor))
    # Slack takes about 11,000 characters a message: the entries share what the page leaves, a short entry giving
    # its unused share to the long ones, so an entry is shortened only when the page could not hold it whole.
    room = AUDIT_PAGE_TEXT - sum(len(h) + len(tail) + 1 for h, tail in heads)
    cap = _water_level([sum(len(p) + 2 for p in parts) + 3 for parts in bodies], max(room, 0))
    lines = [f"{h}{_fit_parts(parts, cap)}{tail}" for (h, tail), parts in zip(heads, bodies, strict=True)]
    first, last = t.first_position, t.first_position + len(t.entries) - 1
    if page.pages == 1:
        head = f"Audit timeline of {t.ref}: all {page.total} entr{'ies' if page.total != 1 else 'y'}, oldest first"
    else:
        newest = " (the newest)" if page.number == 1 else ""
        head = (
            f"Audit timeline of {t.ref}: entries {_span(first, last)} of {page.total}{newest}, oldest first; "
            f"page {page.number} of {page.pages}"
        )
    blocks: list[Block] = [section(f"*{head}*"), *sections("\n".join(lines))]
    chain = (
        f"Entries are numbered from {t.ref}'s first; `#n` is the entry's place in the tamper-evident audit chain "
        "of every contract."
    )
    if not page.is_last:
        blocks.append(
            ContextBlock(
                elements=[
                    md(
                        f"Earlier entries: *More* below, or `/contract audit {t.ref} page={page.number + 1}`. "
                        f"The first entries are on page {page.pages}. {chain}"
                    )
                ]
            )
        )
        nxt = page_after(page)
        blocks.append(
            more_button(
                ActionId.AUDIT_MORE, f"{t.contract_id}:{nxt.number}", f"Earlier entries ({_audit_span(nxt)})"
            )
        )
    elif page.pages > 1:
        blocks.append(
            ContextBlock(
                elements=[
                    md(
                        "This page begins with the contract's first entry; the newest are on page 1 "
                        f"(`/contract audit {t.ref}`). {chain}"
                    )
                ]
            )
        )
    else:
        blocks.append(ContextBlock(elements=[md(chain)]))
    return message(head, blocks)


AUDIT_PAGE_TEXT = (
    9_000  # characters of entry lines on one page: within limits.BUDGETS["message"] with the rest
)
AUDIT_VALUE_SHOWN = 300  # characters of one value (a reason, a note) shown on an entry's line
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def actor_name(actor: str | None) -> str:
    """Who did something, as Slack shows people: a mention (rendered as the person's current name in every
    reader's client, without a users.info call or a cache to go stale), or the bot's own name for its changes."""
    if actor and _SLACK_USER_ID.fullmatch(actor):
        return f"<@{actor}>"
    return f"_{esc(actor or 'unknown')}_"


def _water_level(sizes: list[int], room: int) -> int:
    """The largest per-entry cap c with sum(min(size, c)) <= room (every entry whole when they all fit)."""
    if sum(sizes) <= room:
        return max(sizes, default=0)
    level, left, rest = 0, room, sorted(sizes)
    for i, size in enumerate(rest):
        share = left // (len(rest) - i)
        if size > share:
            return share
        left -= size
        level = size
    return level


def _fit_parts(parts: list[str], cap: int) -> str:
    """An entry's parts within ``cap`` characters: whole parts in order, the one that does not fit shortened
    visibly, and "and N more" for any left out. Never a silent cut."""
    if not parts:
        return ""
    out: list[str] = []
    used = 3
    for i, part in enumerate(parts):
        left = len(parts) - i - 1
        more = len(f"; and {left} more") if left else 0
        if used + len(part) + 2 + more <= cap:
            out.append(part)
            used += len(part) + 2
            continue
        room = cap - used - 2 - len(f"; and {left + 1} more")
        if room >= 24:  # worth showing shortened: its name and the start of its value
            out.append(clip(part, room + len(f"; and {left + 1} more") - more))
            left_out = left
        else:
            left_out = left + 1
        if left_out:
            out.append(f"and {left_out} more")
        break
    return " (" + "; ".join(out) + ")"


# what an audit line names first: which question, answer, status or party changed; then the rest, shortest first
_AUDIT_KEYS_FIRST = (
    "qid",
    "answer",
    "status",
    "vendor",
    "product",
    "agency",
    "determination",
    "user",
    "role",
)
# how an audited field is named to people (the rest by their key, underscores as spaces)
_AUDIT_LABELS = {
    "qid": "question",
    "by": "answered by",
    "value_cents": "value",
    "awarded_on": "awarded",
    "third_party": "third party operates it",
    "parent": "ultimate owner",
    "contract_no": "contract no.",
    "stopwork_since": "stop-work since",
    "stopwork_reason": "stop-work reason",
    "stopwork_lifted_on": "stop-work lifted on",
    "determined_on": "determined on",
    "determination_reason": "reason",
    "certified_on": "certified on",
    "certified_by": "certified by",
    "notice_on": "APNSA notice",
    "cleared_on": "APNSA clearance",
    "waiver_official": "waiver official",
    "waiver_issued_on": "waiver issued",
    "waiver_until": "waiver in force through",
    "waiver_revoked_on": "waiver revoked",
    "waiver_reported_on": "waiver report sent",
    "revocation_reported_on": "revocation report sent",
    "closed_on": "closed",
    "close_reason": "close reason",
}
_PEOPLE_KEYS = frozenset({"by", "user", "reviewers", "determined_by", "filed_by", "actor"})


def _empty(value: object) -> bool:
    return value is None or value == "" or value == []


def _shown(key: str, value: object) -> str:
    """One audited value as people read it: people as mentions, money in dollars, yes/no, text escaped."""
    if key in _PEOPLE_KEYS:
        people = value if isinstance(value, list) else [value]
        return ", ".join(actor_name(str(p)) for p in people)
    if key == "value_cents" and isinstance(value, int) and not isinstance(value, bool):
        return money(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(short(v, AUDIT_VALUE_SHOWN) for v in value)
    return said(value, AUDIT_VALUE_SHOWN)


def _changes(before: str | None, after: str | None, *, actor: str | None = None) -> list[str]:
    """What an entry changed, the telling keys first and long texts (reasons, notes) last: "status in-review →
    stop-work", "vendor set to …", "stop-work since cleared (was 2024-10-08)"; never an arrow to nothing."""
    b = json.loads(before) if before else {}
    a = json.loads(after) if after else {}
    if not isinstance(a, dict) or not isinstance(b, dict):
        return [short(after or before or "", AUDIT_VALUE_SHOWN)]
    parts = []
    for k in set(a) | set(b):
        old, new = b.get(k), a.get(k)
        if old == new and not (k == "qid" and not _empty(new)):
            continue
        if k == "by" and new == actor and _empty(old):
            continue  # who answered is the entry's actor, named at its start
        label = esc(_AUDIT_LABELS.get(k, k.replace("_", " ")))
        if k == "qid":
            parts.append((k, f"{label} {_shown(k, new)}"))  # which question: named, not a change
        elif _empty(old) and _empty(new):
            continue
        elif _empty(old):
            parts.append((k, f"{label} set to {_shown(k, new)}"))
        elif _empty(new):
            parts.append((k, f"{label} cleared (was {_shown(k, old)})"))
        else:
            parts.append((k, f"{label}: {_shown(k, old)} → {_shown(k, new)}"))
    order = {k: i for i, k in enumerate(_AUDIT_KEYS_FIRST)}
    parts.sort(key=lambda p: (order.get(p[0], len(order)), len(p[1]), p[0]))
    return [text for _, text in parts]


def _diff(before: str | None, after: str | None) -> str:
    """What an entry changed, on one line (every field; see _changes)."""
    parts = _changes(before, after)
    return " (" + "; ".join(parts) + ")" if parts else ""


def page_after(page: Page) -> Page:
    """The page after ``page``."""
    return Page(page.number + 1, page.size, page.total)


def _span(first: int, last: int) -> str:
    return f"{first}" if first == last else f"{first}–{last}"


def _span_of(page: Page) -> str:
    """Positions a page of a newest-first list holds, counted from the newest (1–20)."""
    return _span(page.offset + 1, page.offset + page.count)


def _audit_span(page: Page) -> str:
    """Entries a page of the audit log holds, counted from the contract's first entry (323–362)."""
    end = page.total - page.offset
    return _span(end - page.count + 1, end)


def build_roles(result: RolesList) -> dict:
    """`admin roles`: who holds which role (bootstrap admins first)."""
    boot = result.bootstrap_admins
    lines = [f"*Bootstrap admins* (ADMIN_USER_IDS): {', '.join(f'<@{u}>' for u in boot) or 'none'}"]
    by_role: dict[str, list[str]] = {}
    for role, user in result.grants:
        by_role.setdefault(role, []).append(f"<@{user}>")
    for role in ("admin", "official", "manager", "reviewer"):
        holders = by_role.get(role, [])
        named = ", ".join(holders[:ROLE_HOLDERS_SHOWN]) or "nobody"
        rest = len(holders) - ROLE_HOLDERS_SHOWN
        lines.append(f"*{role}*: {named}" + (f" and {rest} more ({len(holders)} in all)" if rest > 0 else ""))
    text = "\n".join(lines)
    if len(text) <= limits.SECTION_TEXT:
        return {"text": text}
    return message("Who holds which role", sections(text))


def build_settings(result: SettingsList) -> dict:
    """`admin settings`: every runtime setting with where its value comes from."""
    lines = [
        f"`{k}` = `{short(v, 200) or '(not set)'}` ({result.sources.get(k, '')})"
        for k, v in sorted(result.values.items())
        if k != PLANNED_ZONE_KEY
    ]
    if PLANNED_ZONE_KEY in result.values:  # kept by the bot, not by `admin set`
        lines.append(
            f"Reminders are planned in `{short(result.values[PLANNED_ZONE_KEY], 100)}` (BOT_TIMEZONE)."
        )
    text = "*Runtime settings*\n" + "\n".join(lines)
    if len(text) <= limits.SECTION_TEXT:
        return {"text": text}
    return message("Runtime settings", sections(text))
